"""The search's page: each query's thumbnail and its matches, self-contained HTML."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..data.images import thumbnail_uri
from ..data.manifests import CSV_ERRORS
from ..foundation.folders import printable
from ..foundation.io_utils import atomic_path


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
