"""The run report: one self-contained HTML page (plots embedded as PNG data URIs)."""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from PIL import Image  # noqa: E402

from .io_utils import atomic_path  # noqa: E402
from .runlog import parse_run_location  # noqa: E402

VARIANTS = ["global", "global_local", "global_rerank", "global_local_rerank"]
VARIANT_LABELS = {"global": "global", "global_local": "global + local (DMLI)", "global_rerank": "global, re-ranked",
                  "global_local_rerank": "global + local, re-ranked"}
# Published Market-1501 numbers of the model-zoo AlignedReID++ (Ascend 910), DESIGN.md §5.
SEED = {"global_local": {"mAP": 79.2, "ranks": [91.7, 97.4, 98.6, 99.3]},
        "global_local_rerank": {"mAP": 91.4, "ranks": [93.3, 96.7, 97.6, 98.5]}}
RANKS = [1, 5, 10, 20]
PACKAGES = ["mindspore", "numpy", "scipy", "pandas", "snakemake", "openvino", "numba", "pillow", "matplotlib"]

CSS = """
body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:3px 9px;text-align:right}
th{background:#f0f0f0}td.l,th.l{text-align:left}.warn{background:#fff3cd;border:1px solid #e0c060;padding:8px;font-weight:bold}
.ok{color:#176317;font-weight:bold}.bad{color:#a01010;font-weight:bold}pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}
.ranks img{margin:1px;border:3px solid #999}.ranks img.hit{border-color:#1a9a1a}.ranks img.miss{border-color:#c81e1e}
.ranks img.q{border-color:#2050c0}.ranks td{text-align:left;white-space:nowrap}figure{display:inline-block;margin:0 1em 0 0}
"""


def _esc(x) -> str:
    return html.escape(str(x))


def _table(rows, header, left_cols=1) -> str:
    head = "".join(f"<th class='{'l' if i < left_cols else ''}'>{_esc(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td class='{'l' if i < left_cols else ''}'>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _thumb(path, h=96) -> str:
    try:
        im = Image.open(path).convert("RGB")
        im = im.resize((max(1, round(im.width * h / im.height)), h))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    except OSError:
        return ""


def _pct(x) -> str:
    return f"{100 * x:.1f}"


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for b in iter(lambda: fh.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def metrics_section(metrics: dict, source: str, synthetic: bool) -> str:
    rows = []
    for v in VARIANTS:
        if v not in metrics:
            continue
        m = metrics[v]
        cmc = m["cmc"]
        ours = [f"<span data-metric='{v}.mAP'>{_pct(m['mAP'])}</span>"] + [
            f"<span data-metric='{v}.R{r}'>{_pct(cmc[r - 1])}</span>" if r <= len(cmc) else "-" for r in RANKS]
        seed = SEED.get(v)
        seed_cells = [f"{seed['mAP']:.1f}"] + [f"{x:.1f}" for x in seed["ranks"]] if seed else ["-"] * 5
        rows.append([VARIANT_LABELS[v]] + ours + seed_cells)
    label = "synthetic demo data" if synthetic else "Market-1501"
    head = ["variant", "mAP %", "R1 %", "R5 %", "R10 %", "R20 %", "seed mAP", "seed R1", "seed R5", "seed R10", "seed R20"]
    banner = ('<p class="warn">These numbers are on SYNTHETIC demo data and cannot be compared with the '
              'Market-1501 columns of the model zoo.</p>') if synthetic else ""
    return (f"<h2>Results ({_esc(label)}, {_esc(source)} features, {metrics.get('num_query')} queries x "
            f"{metrics.get('num_gallery')} gallery)</h2>{banner}" + _table(rows, head)
            + "<p>Seed: the model-zoo AlignedReID++ on Market-1501 (Ascend 910), global+local without and with re-ranking.</p>")


def cmc_plot(metrics: dict) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for v in VARIANTS:
        if v in metrics:
            cmc = np.array(metrics[v]["cmc"]) * 100
            ax.plot(np.arange(1, len(cmc) + 1), cmc, label=VARIANT_LABELS[v])
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate %")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("CMC")
    return f"<figure><img src='{_png(fig)}' alt='CMC curves'></figure>"


def training_plots(log_csv) -> str:
    df = pd.read_csv(log_csv)
    if df.empty:
        return "<p>No training steps were logged.</p>"
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    for col in ["loss", "id_loss", "triplet_loss", "local_loss"]:
        axes[0].plot(df.global_step, df[col], label=col)
    axes[0].set_title("losses")
    axes[0].legend(fontsize=7)
    axes[1].plot(df.global_step, df.lr)
    axes[1].set_title("learning rate")
    axes[2].plot(df.global_step, df.images_per_s)
    axes[2].set_title("images/s")
    for a in axes:
        a.set_xlabel("step")
        a.grid(alpha=0.3)
    return f"<img src='{_png(fig)}' alt='training curves'>"


def rank_lists(per_query_csv, gallery_csv, n_queries=6) -> str:
    pq = pd.read_csv(per_query_csv)
    gallery = pd.read_csv(gallery_csv)
    variants = [v for v in ("global_local", "global_local_rerank") if v in set(pq.variant)]
    if not variants:
        return ""
    base = pq[pq.variant == variants[0]].sort_values("query_index")
    picks = base.iloc[np.linspace(0, len(base) - 1, min(n_queries, len(base))).astype(int)]
    rows = []
    for _, q in picks.iterrows():
        for v in variants:
            r = pq[(pq.variant == v) & (pq.query_index == q.query_index)].iloc[0]
            cells = [f"<img class='q' src='{_thumb(q.query_path)}' title='query pid {q.pid}'>" if v == variants[0] else "",
                     _esc(VARIANT_LABELS[v])]
            imgs = []
            for gi in map(int, str(r.top10_gallery).split()):
                g = gallery.iloc[gi]
                if g.pid == -1 or (g.pid == q.pid and g.camid == q.camid):
                    cls = ""  # ignored by the protocol
                else:
                    cls = "hit" if g.pid == q.pid else "miss"
                imgs.append(f"<img class='{cls}' src='{_thumb(g.path, 72)}' title='pid {g.pid} cam {g.camid + 1}'>")
            cells.append("".join(imgs))
            rows.append(cells)
    return ("<h2>Rank lists</h2><p>Query (blue) and its top-10 gallery images: green = correct match, red = wrong, grey = "
            "junk or same camera (ignored by the protocol). Before and after re-ranking.</p><div class='ranks'>"
            + _table(rows, ["query", "variant", "top 10"], left_cols=3) + "</div>")


def where_ran(log_file) -> str:
    """'SLURM job N on host' from the first lines of a stage log, else 'this host'."""
    try:
        with open(log_file, errors="replace") as fh:
            head = "".join(fh.readline() for _ in range(20))
    except OSError:
        return "this host"
    found = parse_run_location(head)
    return f"SLURM job {found[0]} on {found[1]}" if found else "this host"


def benchmark_section(bench_dir, logs_dir=None) -> str:
    logs_dir = Path(logs_dir) if logs_dir else Path(bench_dir).parent / "logs"
    rows = []
    for f in sorted(Path(bench_dir).glob("*.tsv")):
        try:
            b = pd.read_csv(f, sep="\t")
        except (OSError, pd.errors.ParserError):
            continue
        if b.empty:
            continue
        r = b.iloc[-1]
        where = where_ran(logs_dir / f"{f.stem}.log")
        rows.append([_esc(f.stem), f"{r.get('s', float('nan')):.1f}", f"{r.get('max_rss', float('nan')):.0f}",
                     f"<span data-where='{_esc(f.stem)}'>{_esc(where)}</span>"])
    return ("<h2>Stages: wall time, peak memory, where they ran</h2>"
            + _table(rows, ["stage", "wall s", "peak RSS MB", "ran on"], left_cols=1) if rows else "")


def provenance(config: dict, inputs: dict) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit, dirty = "unknown", ""
    versions = []
    for p in PACKAGES:
        try:
            versions.append([p, metadata.version(p)])
        except metadata.PackageNotFoundError:
            versions.append([p, "-"])
    sums = [[_esc(k), f"<code>{_sha256(v)[:16]}</code>", f"{os.path.getsize(v) / 2**20:.1f}"] for k, v in inputs.items()
            if k in ("model", "mindir", "onnx") and v and Path(v).is_file()]
    return ("<h2>Provenance</h2>" + _table([["git commit", _esc(commit + (" (with uncommitted changes)" if dirty else ""))],
                                           ["python", platform.python_version()], ["machine", _esc(platform.platform())]], ["", ""], 2)
            + _table(versions, ["package", "version"], 2) + _table(sums, ["artifact", "sha256 (first 16)", "MB"], 1)
            + "<h3>Resolved configuration</h3><pre>" + _esc(yaml.safe_dump(config, sort_keys=False)) + "</pre>")


def write_report(out, inputs: dict, config: dict, pending: list[str] | None = None) -> None:
    summary = json.loads(Path(inputs["summary"]).read_text())
    metrics = json.loads(Path(inputs["metrics"]).read_text()) if inputs.get("metrics") else {}
    train_summary = json.loads(Path(inputs["train_summary"]).read_text()) if inputs.get("train_summary") else {}
    parity = json.loads(Path(inputs["parity"]).read_text()) if inputs.get("parity") else None
    synthetic = summary["source"] == "synthetic"
    parts = ["<h1>AlignedReID++ pipeline report</h1>"]
    if pending:
        parts.append(f"<p class='warn'>Stages not built yet: {_esc(', '.join(pending))}.</p>")
    if synthetic:
        parts.append("<p class='warn'>Dataset: SYNTHETIC demo (generated Market-1501 layout), not Market-1501.</p>")
    if config.get("pretrained") is None:
        parts.append("<p class='warn'>No pretrained checkpoint: the backbone was trained from scratch.</p>")
    if metrics:
        parts.append(metrics_section(metrics, metrics.get("feature_source", "?"), synthetic))
        parts.append(cmc_plot(metrics))
    if train_summary:
        qe = train_summary.get("quick_eval") or {}
        rows = [["ResNet depth", train_summary.get("depth")], ["input", f"{train_summary.get('height')}x{train_summary.get('width')}"],
                ["identities", train_summary.get("num_classes")], ["epochs", train_summary.get("epochs")],
                ["steps/epoch", train_summary.get("steps_per_epoch")], ["ranks", train_summary.get("world_size")],
                ["final loss", f"{train_summary.get('final_loss', float('nan')):.4f}"],
                ["median images/s", f"{train_summary.get('median_images_per_s') or float('nan'):.1f}"]]
        if qe.get("init") and qe.get("trained"):
            rows.append(["quick global mAP: init -> trained", f"{_pct(qe['init']['mAP'])} % -> {_pct(qe['trained']['mAP'])} %"])
        parts.append("<h2>Training</h2>" + _table([[_esc(a), _esc(b)] for a, b in rows], ["", ""], 1))
        if inputs.get("train_log"):
            parts.append(training_plots(inputs["train_log"]))
    if parity is not None:
        ok = parity["max_abs_diff"] <= 1e-4
        parts.append("<h2>C++ vs Python features</h2><p>max |C++ - Python| over all features: "
                     f"<span class='{'ok' if ok else 'bad'}' data-metric='parity'>{parity['max_abs_diff']:.2e}</span> "
                     f"({'within' if ok else 'ABOVE'} the 1e-4 tolerance; global {parity['global_max_abs_diff']:.2e}, local {parity['local_max_abs_diff']:.2e}).</p>")
    exports = [[_esc(Path(inputs[k]).name), f"{os.path.getsize(inputs[k]) / 2**20:.1f}"] for k in ("mindir", "onnx") if inputs.get(k)]
    if exports:
        parts.append("<h2>Exported models</h2>" + _table(exports, ["file", "MB"]))
    infer_rows = []
    for split in ("query", "gallery"):
        log = inputs.get(f"infer_log_{split}")
        if log and Path(log).is_file():
            for line in Path(log).read_text().splitlines():
                if line.startswith("images/s"):
                    infer_rows.append([split, _esc(line.split()[1]), _esc(line)])
    if infer_rows:
        parts.append("<h2>C++ inference</h2>" + _table(infer_rows, ["split", "images/s", "program output"], 1))
    if inputs.get("per_query") and inputs.get("gallery"):
        parts.append(rank_lists(inputs["per_query"], inputs["gallery"]))
    parts.append("<h2>Dataset</h2>" + _table(
        [[s, v["images"], v["ids"], len(v["cameras"]), v["distractors"], v["junk"], len(v["corrupt_skipped"])] for s, v in summary["splits"].items()],
        ["split", "images", "ids", "cameras", "distractors", "junk", "corrupt skipped"]))
    parts.append(benchmark_section(inputs.get("bench_dir", "results/benchmarks")))
    parts.append(provenance(config, inputs))
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>AlignedReID++ report</title><style>{CSS}</style>"
            f"</head><body>{''.join(parts)}</body></html>")
    with atomic_path(out) as tmp:
        tmp.write_text(page)
