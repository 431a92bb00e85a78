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


def list_images(folder, out_csv, skipped_txt, role: str) -> dict:
    """Write the manifest of every usable image under ``folder`` (path, pid 0, camid 0, sha256) and the
    list of every other entry with why it was skipped (hidden, not a regular file, a link that leads
    nowhere or to a folder, not an image, too large or degenerate, the same file as an earlier entry);
    an empty result is an error naming the folder. Entries are never opened before they are known to
    be regular files; names that are not UTF-8 are kept exactly."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise PipelineError(f"search.{role}: {folder} is not a folder")
    rows, skipped, seen = [], [], {}
    for p, reason in walk_entries(folder):
        if reason is None:
            reason = why_unusable(p)
        if reason is None:
            st = os.stat(p)
            first = seen.setdefault((st.st_dev, st.st_ino), p)
            if first != p:
                reason = f"the same file as {printable(first)} (searched once)"
        if reason:
            skipped.append(f"{printable(p)}\t{reason}")
            log.warning("search.%s: skipping %s (%s)", role, printable(p), reason)
            continue
        rows.append((os.path.abspath(p), 0, 0, sha256_of(p)))
    if not rows:
        raise PipelineError(f"search.{role}: no usable image under {folder} ({len(skipped)} other entries, listed in {skipped_txt})")
    df = pd.DataFrame(rows, columns=["path", "pid", "camid", "sha256"])
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False, errors=CSV_ERRORS)
    with atomic_path(skipped_txt) as tmp:
        tmp.write_text("".join(s + "\n" for s in skipped), encoding="utf-8")
    log.info("search.%s: %d images, %d entries skipped, from %s", role, len(df), len(skipped), folder)
    return {"images": len(df), "skipped": len(skipped)}
