"""Listing of a search folder: every entry a manifest row or a skipped line with its reason."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from ..data.images import why_unusable
from ..data.manifests import CSV_ERRORS
from ..foundation.errors import PipelineError
from ..foundation.folders import printable, walk_entries
from ..foundation.io_utils import atomic_path, sha256_of

log = logging.getLogger(__name__)


def list_images(folder, out_csv, skipped_txt, role: str, shard: tuple[int, int] = (0, 1)) -> dict:
    """Write the manifest of every usable image under ``folder`` (path, pid 0, camid 0, sha256) and the
    list of every other entry with why it was skipped (hidden, not a regular file, a link that leads
    nowhere or to a folder, not an image, too large or degenerate, the same file as an earlier entry);
    an empty result is an error naming the folder. Entries are never opened before they are known to
    be regular files; names that are not UTF-8 are kept exactly. ``shard`` = (index, count): only that
    contiguous part of the folder's sorted entries is looked at (search.shards; an empty shard is no
    error), and ``join_listings`` joins the shards' files."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise PipelineError(f"search.{role}: {folder} is not a folder")
    from ..serving.shards import shard_rows

    entries = list(walk_entries(folder))
    index, count = shard
    part = shard_rows(len(entries), count, 1)[index]
    entries = entries[part.start : part.stop]
    rows, skipped, seen = [], [], {}
    for p, reason in entries:
        if reason is None:
            reason = why_unusable(p)
        if reason is None:
            reason = _duplicate(p, seen)
        if reason:
            skipped.append(f"{printable(p)}\t{reason}")
            log.warning("search.%s: skipping %s (%s)", role, printable(p), reason)
            continue
        rows.append((os.path.abspath(p), 0, 0, sha256_of(p)))
    if not rows and count == 1:
        raise PipelineError(f"search.{role}: no usable image under {folder} ({len(skipped)} other entries, listed in {skipped_txt})")
    df = pd.DataFrame(rows, columns=["path", "pid", "camid", "sha256"])
    _write(df, skipped, out_csv, skipped_txt)
    log.info("search.%s: %d images, %d entries skipped, from %s (shard %d of %d)", role, len(df), len(skipped), folder, index + 1, count)
    return {"images": len(df), "skipped": len(skipped)}


def _duplicate(p, seen: dict) -> str | None:
    """Why ``p`` is skipped as the same file as an earlier entry (a hard or symbolic link to it), or None."""
    st = os.stat(p)
    first = seen.setdefault((st.st_dev, st.st_ino), p)
    return None if first == p else f"the same file as {printable(first)} (searched once)"


def _write(df: pd.DataFrame, skipped: list[str], out_csv, skipped_txt) -> None:
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False, errors=CSV_ERRORS)
    with atomic_path(skipped_txt) as tmp:
        tmp.write_text("".join(s + "\n" for s in skipped), encoding="utf-8")


def join_listings(manifests, skipped_files, out_csv, skipped_txt, folder, role: str) -> dict:
    """The listings of a folder's shards, in order, as one manifest and one skipped list; a file listed
    by two shards under two names (a link in one, its target in another) is kept once, the later name
    skipped as the same file. An empty result is an error naming the folder."""
    df = pd.concat([pd.read_csv(m, encoding_errors=CSV_ERRORS) for m in manifests], ignore_index=True)
    skipped = [line for f in skipped_files for line in Path(f).read_text(encoding="utf-8").splitlines()]
    seen, keep = {}, []
    for p in df.path:
        reason = _duplicate(p, seen)
        keep.append(reason is None)
        if reason:
            skipped.append(f"{printable(p)}\t{reason}")
    df = df[keep]
    if df.empty:
        raise PipelineError(f"search.{role}: no usable image under {folder} ({len(skipped)} other entries, listed in {skipped_txt})")
    _write(df, skipped, out_csv, skipped_txt)
    log.info("search.%s: %d images, %d entries skipped, from %d shards", role, len(df), len(skipped), len(manifests))
    return {"images": len(df), "skipped": len(skipped)}
