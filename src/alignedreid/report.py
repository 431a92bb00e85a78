"""The run report: one self-contained HTML page built from the pipeline's outputs."""
from __future__ import annotations

import html
import json
import os
from pathlib import Path

import yaml

from .io_utils import atomic_path


def _table(rows: list[list], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _dataset_section(summary: dict) -> str:
    rows = [
        [split, s["images"], s["ids"], len(s["cameras"]), s["distractors"], s["junk"], len(s["corrupt_skipped"])]
        for split, s in summary["splits"].items()
    ]
    banner = ""
    if summary["source"] == "synthetic":
        banner = '<p class="warn">SYNTHETIC DEMO DATA: these numbers say nothing about Market-1501.</p>'
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in summary.get("count_warnings", []))
    return (
        f"<h2>Dataset: {html.escape(summary['source'])}</h2>{banner}"
        + _table(rows, ["split", "images", "ids", "cameras", "distractors", "junk", "corrupt skipped"])
        + (f"<ul>{warnings}</ul>" if warnings else "")
    )


CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f0f0f0}.warn{background:#fff3cd;border:1px solid #e0c060;padding:8px;font-weight:bold}
pre{background:#f7f7f7;padding:1em;overflow:auto}
"""


def write_report(out: str | os.PathLike, inputs: dict, config: dict, pending: list[str]) -> None:
    summary = json.loads(Path(inputs["summary"]).read_text())
    parts = ["<h1>AlignedReID++ pipeline report</h1>"]
    if pending:
        parts.append(
            '<p class="warn">Stages not built into the pipeline yet: '
            + html.escape(", ".join(pending))
            + ". This page shows only what the built stages produced.</p>"
        )
    parts.append(_dataset_section(summary))
    parts.append("<h2>Resolved configuration</h2><pre>" + html.escape(yaml.safe_dump(config, sort_keys=False)) + "</pre>")
    page = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>AlignedReID++ report</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>"
    with atomic_path(out) as tmp:
        tmp.write_text(page)
