"""Search one's own crops: query images (a folder, searched recursively; any name, any format Pillow
reads) against a gallery (a folder, or the evaluation gallery), ranked by the evaluation's distance,
with a "same person" decision from the threshold the evaluation calibrated (metrics.json
``verification``).

- Listing (:func:`list_images`): every entry under the folder is either a row of the manifest or a
  line of ``skipped.txt`` with its reason (hidden entries, special files, links that lead nowhere or
  to folders, files that are no usable image by the image contract, duplicates of the same file).
  No identity or camera is needed.
- Features come from the same C++ program, model and precision as ``infer_cpp``
  (:func:`cached_features`), cached by image content: a folder per model holds append-only shards,
  keyed by the sha256 of the bytes decoded, so adding 10 images to a gallery computes and writes 10
  and removing one computes none.
- Ranking (:func:`search`): the verification distance (global, or global + DMLI local), the top-k
  gallery images per query, ``same_person`` when the distance is below the threshold.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from .data.images import UnusableImage, normalised_bytes, thumbnail_uri, why_unusable
from .data.manifests import CSV_ERRORS, read_manifest
from .errors import PipelineError
from .evaluation.distance import global_distance, unit_stripes_
from .evaluation.features_io import load_features, save_features
from .evaluation.local import local_distance
from .evaluation.shortlist import two_stage_global_local
from .folders import printable, walk_entries
from .io_utils import atomic_path, sha256_of

log = logging.getLogger(__name__)
MATCH_COLUMNS = ["query", "rank", "gallery", "distance", "same_person"]


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


# ---- the feature cache: one folder per model, append-only shards, keyed by the bytes decoded -----


def _load_shard(shard: Path):
    sha = np.load(shard / "sha256.npy", allow_pickle=False)
    g = np.load(shard / "global.npy", mmap_mode="r", allow_pickle=False)
    loc = np.load(shard / "local.npy", mmap_mode="r", allow_pickle=False)
    if not (len(sha) == len(g) == len(loc)) or g.ndim != 2 or loc.ndim != 3:
        raise ValueError(f"arrays of {len(sha)}, {len(g)} and {len(loc)} rows")
    return sha.astype(str), g, loc


def cache_index(root: Path) -> dict:
    """{sha256: (global rows, local rows, row)} of every shard under ``root`` (memory-mapped). A shard
    that cannot be read is named in the log and removed: its images are computed again."""
    index = {}
    for shard in sorted(Path(root).glob("shard-*")):
        try:
            sha, g, loc = _load_shard(shard)
        except (OSError, ValueError, EOFError) as e:
            log.warning("%s: unreadable feature cache shard (%s): removed, its images are computed again", shard, e)
            shutil.rmtree(shard, ignore_errors=True)
            continue
        for i, h in enumerate(sha):
            index.setdefault(h, (g, loc, i))
    return index


def write_shard(root: Path, keys, g: np.ndarray, loc: np.ndarray) -> Path:
    """A new shard of ``keys`` and their features, appearing complete (renamed into place): concurrent
    writers (queries and gallery, two searches) each add their own and never rewrite another's."""
    root.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
    tmp = root / f".tmp-{name}"
    tmp.mkdir()
    np.save(tmp / "sha256.npy", np.asarray(list(keys), dtype="<U64"))
    np.save(tmp / "global.npy", np.ascontiguousarray(g, np.float32))
    np.save(tmp / "local.npy", np.ascontiguousarray(loc, np.float32))
    target = root / f"shard-{name}"
    os.rename(tmp, target)
    return target


def _gather(index: dict, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    g0, l0, _ = index[keys[0]]
    g = np.empty((len(keys), g0.shape[1]), np.float32)
    loc = np.empty((len(keys), *l0.shape[1:]), np.float32)
    by_shard: dict[int, tuple] = {}  # rows of one shard read together, in file order
    for pos, h in enumerate(keys):
        sg, sl, row = index[h]
        _, _, positions, rows = by_shard.setdefault(id(sg), (sg, sl, [], []))
        positions.append(pos)
        rows.append(row)
    for sg, sl, positions, rows in by_shard.values():
        order = np.argsort(rows)
        pos, rows = np.asarray(positions)[order], np.asarray(rows)[order]
        g[pos], loc[pos] = sg[rows], sl[rows]
    return g, loc


def cached_features(
    manifest_csv, out_npz, cache_dir, exe, model, height: int, width: int, batch: int, threads: int, precision: str, hint: str, flip: bool
) -> dict:
    """Features of every manifest row into ``out_npz``. Each image is read once here and keyed by the
    sha256 of exactly those bytes; the images the cache of this model (``cache_dir``/<model key>/)
    lacks go through the C++ program from a copy of those bytes (normalised by the image contract), so
    a file replaced after the listing can never be stored under another file's key."""
    from .features.cpp_files import collect_cpp_outputs, preprocess, run_cpp_program

    df = read_manifest(manifest_csv)
    model_files = [Path(model)] + ([Path(model).with_suffix(".bin")] if str(model).endswith(".xml") else [])
    key = hashlib.sha256("".join(sha256_of(p) for p in model_files).encode() + f"{precision} {flip} {height}x{width}".encode()).hexdigest()[:16]
    root = Path(cache_dir) / key
    index = cache_index(root)
    work = Path(cache_dir).parent
    work.mkdir(parents=True, exist_ok=True)
    keys, pending = [], {}
    with tempfile.TemporaryDirectory(dir=work, prefix=".search-") as tmp:
        tmp = Path(tmp)
        for path in df.path:
            try:
                data = Path(path).read_bytes()
            except OSError as e:
                raise PipelineError(f"{printable(path)}: cannot be read any more ({e.strerror}); run the search again to list the folder anew") from e
            h = hashlib.sha256(data).hexdigest()
            keys.append(h)
            if h in index or h in pending:
                continue
            try:
                copy = normalised_bytes(data, printable(path))
            except UnusableImage as e:
                raise PipelineError(f"{e}; it changed since the folder was listed: run the search again") from e
            f = tmp / f"{len(pending):07d}.img"
            f.write_bytes(copy)
            pending[h] = f
        log.info("%d images: %d from the feature cache, %d new through the C++ program", len(df), len(df) - len(pending), len(pending))
        if pending:
            new = pd.DataFrame({"path": [str(f) for f in pending.values()], "pid": 0, "camid": 0})
            new.to_csv(tmp / "new.csv", index=False)
            preprocess(tmp / "new.csv", tmp / "new.u8", height, width, workers=threads)
            run_cpp_program(exe, model, tmp / "new.u8", tmp / "out", batch, height, width, 0, threads, flip=flip, precision=precision, hint=hint)
            collect_cpp_outputs(tmp / "new.csv", tmp / "out", tmp / "new.npz", model=model)  # non-finite: refused before caching
            feats = load_features(tmp / "new.npz")
            shard = write_shard(root, pending, feats.global_, feats.local)
            index.update({h: (feats.global_, feats.local, i) for i, h in enumerate(pending)})
            log.info("cached %d new images in %s", len(pending), shard)
    g, loc = _gather(index, keys)
    save_features(out_npz, g, loc, df.pid, df.camid, df.path, model=model)
    return {"images": len(df), "computed": len(pending), "cache": str(root)}


def search_distances(query, gallery, variant: str, shortlist: int | None = None) -> np.ndarray:
    """The evaluation's distance between every query and gallery image (docs/architecture.md §5); with
    ``shortlist`` the local part only on each query's K nearest by the global distance (exact there,
    the rest placed after them)."""
    d = global_distance(query.global_, gallery.global_)
    if variant == "global_local" and shortlist:
        d = two_stage_global_local(d, unit_stripes_(query.local), unit_stripes_(gallery.local), shortlist)
    elif variant == "global_local":
        d += local_distance(unit_stripes_(query.local), unit_stripes_(gallery.local))
    elif variant != "global":
        raise PipelineError(f"search: distance {variant!r} is not global or global_local")
    return d


def search(query_npz, gallery_npz, verification: dict, out_csv, top_k: int, shortlist: int | None = None) -> tuple[pd.DataFrame, int]:
    """matches.csv: for every query its ``top_k`` gallery images, nearest first, with the distance and
    the decision (distance below ``verification['threshold']``)."""
    query, gallery = load_features(query_npz), load_features(gallery_npz)
    variant, threshold = verification["variant"], float(verification["threshold"])
    dist = search_distances(query, gallery, variant, shortlist)
    k = min(top_k, dist.shape[1])
    top = np.argpartition(dist, k - 1, axis=1)[:, :k] if k < dist.shape[1] else np.tile(np.arange(dist.shape[1]), (len(dist), 1))
    rows = []
    for i in range(len(dist)):
        order = top[i][np.lexsort((top[i], dist[i, top[i]]))]  # by distance, ties by gallery order
        for r, j in enumerate(order, start=1):
            rows.append((query.path[i], r, gallery.path[j], float(dist[i, j]), bool(dist[i, j] < threshold)))
    matches = pd.DataFrame(rows, columns=MATCH_COLUMNS)
    with atomic_path(out_csv) as tmp:
        matches.to_csv(tmp, index=False, errors=CSV_ERRORS)
    found = matches[matches["rank"] == 1].same_person.sum()
    log.info(
        "%d queries x %d gallery images (%s distance, threshold %.4f): %d have a match below it", len(query), len(gallery), variant, threshold, found
    )
    return matches, len(gallery)


def write_search_report(matches_csv, verification: dict, out_html, num_gallery: int, skipped_txt=None, max_queries: int = 200) -> None:
    """One self-contained page: each query's thumbnail and its matches, nearest first, green where
    the decision says same person, "no match" where nothing passes the threshold (first
    ``max_queries`` queries; matches.csv has them all)."""
    import jinja2

    matches = pd.read_csv(matches_csv, encoding_errors=CSV_ERRORS)
    queries = []
    for qpath, rows in list(matches.groupby("query", sort=False))[:max_queries]:
        queries.append(
            {
                "path": printable(qpath),
                "name": printable(Path(qpath).name),
                "src": thumbnail_uri(qpath),
                "found": bool(rows.same_person.any()),
                "matches": [
                    {"path": printable(r.gallery), "src": thumbnail_uri(r.gallery, 80), "distance": f"{r.distance:.3f}", "same": bool(r.same_person)}
                    for r in rows.itertuples()
                ],
            }
        )
    skipped = [ln.split("\t")[0] for ln in Path(skipped_txt).read_text().splitlines()] if skipped_txt and Path(skipped_txt).is_file() else []
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.get_template("search.html.j2").render(
        queries=queries,
        num_queries=matches["query"].nunique(),
        num_gallery=num_gallery,
        variant=verification["variant"],
        threshold=f"{verification['threshold']:.4f}",
        target_fpr=f"{verification['target_fpr']:g}",
        tpr=f"{100 * verification['tpr']:.1f}",
        top_k=int(matches["rank"].max()) if len(matches) else 0,
        skipped=skipped,
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(html, encoding="utf-8")
