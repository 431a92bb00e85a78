"""Search one's own crops: query images (a folder, searched recursively; any name, any format Pillow
reads) against a gallery (a folder, or the evaluation gallery), ranked by the evaluation's distance,
with a "same person" decision from the threshold the evaluation calibrated (metrics.json
``verification``).

- Listing (:func:`list_images`): every file under the folder is opened with Pillow; files it cannot
  read are skipped and listed in the stage log and in ``skipped.txt`` (a folder of crops often holds
  a stray text file); hidden files and folders are ignored. No identity or camera is needed.
- Features come from the same C++ program, model and precision as ``infer_cpp``
  (:func:`cached_features`), cached by image content: a cache file per model (its sha256) holds the
  features of every image seen, keyed by the sha256 of its bytes, so adding 10 images to a gallery
  computes 10 and removing one computes none.
- Ranking (:func:`search`): the verification distance (global, or global + DMLI local), the top-k
  gallery images per query, ``same_person`` when the distance is below the threshold.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from .errors import PipelineError
from .evaluation.distance import global_distance, unit_stripes_
from .evaluation.features_io import load_features, save_features
from .evaluation.local import local_distance
from .evaluation.shortlist import two_stage_global_local
from .folders import visible_files
from .io_utils import atomic_path, sha256_of

log = logging.getLogger(__name__)
MATCH_COLUMNS = ["query", "rank", "gallery", "distance", "same_person"]


def readable(path: Path) -> str | None:
    """None when Pillow can decode ``path``, else why not."""
    try:
        with Image.open(path) as im:
            im.convert("RGB").load()
        return None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        return f"{type(e).__name__}: {e}"


def list_images(folder, out_csv, skipped_txt, role: str) -> dict:
    """Write the manifest of every readable image under ``folder`` (path, pid 0, camid 0, sha256)
    and the list of skipped files; an empty result is an error naming the folder."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise PipelineError(f"search.{role}: {folder} is not a folder")
    rows, skipped = [], []
    for p in visible_files(folder):
        why = readable(p)
        if why:
            skipped.append(f"{p}\t{why}")
            log.warning("search.%s: skipping %s (%s)", role, p, why)
            continue
        rows.append((str(p.resolve()), 0, 0, sha256_of(p)))
    if not rows:
        raise PipelineError(f"search.{role}: no image that Pillow can read under {folder} ({len(skipped)} other files)")
    df = pd.DataFrame(rows, columns=["path", "pid", "camid", "sha256"])
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(skipped_txt) as tmp:
        tmp.write_text("".join(s + "\n" for s in skipped))
    log.info("search.%s: %d images, %d files skipped, from %s", role, len(df), len(skipped), folder)
    return {"images": len(df), "skipped": len(skipped)}


def _load_cache(path: Path) -> dict:
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as z:
        return {h: (g, l) for h, g, l in zip(z["sha256"].astype(str), z["global"], z["local"])}


def _save_cache(path: Path, cache: dict) -> None:
    keys = sorted(cache)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, sha256=np.array(keys), **{"global": np.stack([cache[k][0] for k in keys]), "local": np.stack([cache[k][1] for k in keys])})


def cached_features(
    manifest_csv, out_npz, cache_dir, exe, model, height: int, width: int, batch: int, threads: int, precision: str, hint: str, flip: bool
) -> dict:
    """Features of every manifest row into ``out_npz``; only images whose content the cache of this
    model (``cache_dir``/<model sha256>.npz) lacks go through the C++ program."""
    from .features.cpp_files import collect_cpp_outputs, preprocess, run_cpp_program

    df = pd.read_csv(manifest_csv)
    model_files = [Path(model)] + ([Path(model).with_suffix(".bin")] if str(model).endswith(".xml") else [])
    key = hashlib.sha256("".join(sha256_of(p) for p in model_files).encode() + f"{precision} {flip} {height}x{width}".encode()).hexdigest()[:16]
    cache_file = Path(cache_dir) / f"{key}.npz"
    cache = _load_cache(cache_file)
    missing = df[~df.sha256.isin(set(cache))].drop_duplicates("sha256")
    log.info("%d images: %d from the feature cache, %d new through the C++ program", len(df), len(df) - len(missing), len(missing))
    if len(missing):
        with tempfile.TemporaryDirectory(dir=Path(cache_dir).parent) as tmp:
            tmp = Path(tmp)
            missing.to_csv(tmp / "new.csv", index=False)
            preprocess(tmp / "new.csv", tmp / "new.u8", height, width, workers=threads)
            run_cpp_program(exe, model, tmp / "new.u8", tmp / "out", batch, height, width, 0, threads, flip=flip, precision=precision, hint=hint)
            collect_cpp_outputs(tmp / "new.csv", tmp / "out", tmp / "new.npz", model=model)  # non-finite: refused before caching
            new = load_features(tmp / "new.npz")
        for h, g, l in zip(missing.sha256, new.global_, new.local):
            cache[h] = (g, l)
        _save_cache(cache_file, cache)
    g = np.stack([cache[h][0] for h in df.sha256])
    l = np.stack([cache[h][1] for h in df.sha256])
    save_features(out_npz, g, l, df.pid, df.camid, df.path, model=model)
    return {"images": len(df), "computed": int(len(missing)), "cache": str(cache_file)}


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
        matches.to_csv(tmp, index=False)
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

    from .report import _thumb

    matches = pd.read_csv(matches_csv)
    queries = []
    for qpath, rows in list(matches.groupby("query", sort=False))[:max_queries]:
        queries.append(
            {
                "path": qpath,
                "name": Path(qpath).name,
                "src": _thumb(qpath),
                "found": bool(rows.same_person.any()),
                "matches": [
                    {"path": r.gallery, "src": _thumb(r.gallery, 80), "distance": f"{r.distance:.3f}", "same": bool(r.same_person)}
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
        tmp.write_text(html)
