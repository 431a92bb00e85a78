"""The run report: one self-contained HTML page rendered from templates/report.html.j2 (Jinja2),
plots and thumbnails embedded as data URIs. Every file it reads is passed in (the report rule
declares them all as inputs)."""

from __future__ import annotations

import base64
import io
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from ..data.images import thumbnail_uri  # noqa: E402
from ..data.sources import display_name  # noqa: E402
from ..foundation.contracts import JUNK_PID, VARIANT_LABELS, VARIANTS  # noqa: E402
from ..foundation.io_utils import atomic_path, sha256_of  # noqa: E402
from ..foundation.runlog import disk_usage, parse_output_size, parse_run_location  # noqa: E402

# Published Market-1501 numbers of the model-zoo AlignedReID++ (Ascend 910), docs/architecture.md §5.
SEED = {"global_local": {"mAP": 79.2, "ranks": [91.7, 97.4, 98.6, 99.3]}, "global_local_rerank": {"mAP": 91.4, "ranks": [93.3, 96.7, 97.6, 98.5]}}
SEED_STEP_MS = 79  # model-zoo training speed on one Ascend 910
RANKS = [1, 5, 10, 20]
PACKAGES = ["mindspore", "numpy", "scipy", "pandas", "snakemake", "openvino", "numba", "pillow", "matplotlib"]
TEMPLATE = "report.html.j2"


def _pct(x) -> str:
    return f"{100 * x:.1f}"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def cmc_plot(metrics: dict) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for v in VARIANTS:
        if v in metrics:
            cmc = np.array(metrics[v]["cmc"]) * 100
            ax.plot(np.arange(1, len(cmc) + 1), cmc, label=VARIANT_LABELS[v])
    ax.set(xlabel="rank", ylabel="matching rate %", xscale="log", title="CMC")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def verification_section(metrics: dict) -> dict | None:
    """TPR at FPR, the decision threshold, the pair-distance histograms and the camera-pair heatmap."""
    ver = metrics.get("verification")
    if not ver:
        return None
    context = {
        "variant": VARIANT_LABELS[ver["variant"]],
        "rows": [(fpr, _pct(v["tpr"]), f"{v['threshold']:.4f}") for fpr, v in ver["tpr_at_fpr"].items()],
        "threshold": f"{ver['threshold']:.4f}",
        "target_fpr": f"{ver['target_fpr']:g}",
        "tpr": _pct(ver["tpr"]),
        "pairs": (ver["num_positive_pairs"], ver["num_negative_pairs"]),
        "histogram": None,
        "heatmap": None,
    }
    h = ver.get("histograms")
    if h:
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        edges = np.array(h["edges"])
        for key, label in (("positive", "same person"), ("negative", "different persons")):
            counts = np.array(h[key], float)
            ax.stairs(counts / max(counts.sum(), 1), edges, label=label, fill=True, alpha=0.45)
        ax.axvline(ver["threshold"], color="k", lw=1, ls="--", label=f"threshold at FPR {ver['target_fpr']:g}")
        ax.set(xlabel=f"{VARIANT_LABELS[ver['variant']]} distance", ylabel="share of pairs", title="Pair distances")
        ax.legend(fontsize=8)
        context["histogram"] = _png(fig)
    cp = ver.get("camera_pairs")
    if cp and cp["cameras"]:
        grid = np.array([[np.nan if v is None else 100 * v for v in row] for row in cp["rank1"]])
        fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(cp["cameras"]), 1.0 + 0.5 * len(cp["cameras"])))
        im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100)
        labels = [f"c{c + 1}" for c in cp["cameras"]]
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set(xlabel="gallery camera", ylabel="query camera", title="rank-1 % per camera pair")
        if len(labels) <= 10:
            for (a, b), v in np.ndenumerate(grid):
                if not np.isnan(v):
                    ax.text(b, a, f"{v:.0f}", ha="center", va="center", fontsize=6, color="w" if v < 60 else "k")
        fig.colorbar(im, ax=ax, fraction=0.046)
        context["heatmap"] = _png(fig)
    return context


def dataset_name(summary: dict) -> str:
    """Human name of the dataset a summary.json describes (synthetic ones say so and their layout)."""
    if summary["source"] == "synthetic":
        return f"synthetic ({display_name(summary.get('synthetic_layout', 'market1501'))} layout)"
    name = display_name(summary["source"])
    return f"{name} {summary['cuhk03_images']}" if summary.get("cuhk03_images") else name


def results_context(metrics: dict, trained_on: dict, evaluated_on: dict) -> dict:
    """The headline table; the seed's columns only beside a Market-1501 -> Market-1501 run."""
    with_seed = trained_on["source"] == evaluated_on["source"] == "market1501"
    rows = []
    for v in VARIANTS:
        if v not in metrics:
            continue
        cmc = metrics[v]["cmc"]
        seed = SEED.get(v)
        rows.append(
            {
                "variant": v,
                "label": VARIANT_LABELS[v],
                "mAP": _pct(metrics[v]["mAP"]),
                "mINP": _pct(metrics[v]["mINP"]) if "mINP" in metrics[v] else "-",
                "cmc": [(r, _pct(cmc[r - 1]) if r <= len(cmc) else None) for r in RANKS],
                "seed": ([f"{seed['mAP']:.1f}"] + [f"{x:.1f}" for x in seed["ranks"]] if seed else ["-"] * 5) if with_seed else [],
            }
        )
    return {
        "rows": rows,
        "ranks": RANKS,
        "synthetic": "synthetic" in (trained_on["source"], evaluated_on["source"]),
        "with_seed": with_seed,
        "trained_on": dataset_name(trained_on),
        "dataset": dataset_name(evaluated_on),
        "cross_domain": trained_on is not evaluated_on,
        "source": metrics["feature_source"],
        "num_query": metrics["num_query"],
        "num_gallery": metrics["num_gallery"],
        "cmc_plot": cmc_plot(metrics),
        "shortlist": metrics.get("shortlist"),
    }


def training_plot(log_csv) -> str | None:
    df = pd.read_csv(log_csv)
    if df.empty:
        return None
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
    return _png(fig)


def training_context(ts: dict, log_csv, quick_eval: dict | None = None) -> dict:
    """The training table and plot; ``quick_eval``: rule quick_eval's init/trained global mAP, when it ran."""
    if ts.get("source") == "checkpoint":
        rows = [
            ["given checkpoint (not trained in this run)", ts["checkpoint"]],
            ["sha256 (first 16)", ts["checkpoint_sha256"][:16]],
            ["ResNet depth", ts["depth"]],
            ["input", f"{ts['height']}x{ts['width']}"],
            ["identities", ts["num_classes"]],
        ]
        return {"rows": rows, "plot": None}
    step_s = ts.get("median_step_s")
    rows = [
        ["ResNet depth", ts["depth"]],
        ["input", f"{ts['height']}x{ts['width']}"],
        ["identities", ts["num_classes"]],
        ["epochs", ts["epochs"]],
        ["steps/epoch", ts["steps_per_epoch"]],
        ["ranks", ts["world_size"]],
        ["final loss", f"{ts['final_loss']:.4f}" if ts["final_loss"] is not None else "-"],
        ["median images/s", f"{ts['median_images_per_s']:.1f}" if ts["median_images_per_s"] else "-"],
    ]
    if step_s:
        rows.append(
            [
                f"median step (batch x ranks), on {ts.get('device_target', '?')} ({ts.get('execution', '?')})",
                f"{1000 * step_s:.0f} ms (seed: {SEED_STEP_MS} ms on one Ascend 910)",
            ]
        )
    qe = quick_eval or {}
    if qe.get("init") and qe.get("trained"):
        rows.append(["quick global mAP: init -> trained", f"{_pct(qe['init']['mAP'])} % -> {_pct(qe['trained']['mAP'])} %"])
    return {"rows": rows, "plot": training_plot(log_csv)}


def rank_list_rows(per_query_csv, gallery_csv, n_queries=6) -> list[dict]:
    pq = pd.read_csv(per_query_csv)
    gallery = pd.read_csv(gallery_csv)
    variants = [v for v in ("global_local", "global_local_rerank") if v in set(pq.variant)]
    if not variants:
        return []
    base = pq[pq.variant == variants[0]].sort_values("query_index")
    picks = base.iloc[np.linspace(0, len(base) - 1, min(n_queries, len(base))).astype(int)]
    rows = []
    for _, q in picks.iterrows():
        for v in variants:
            r = pq[(pq.variant == v) & (pq.query_index == q.query_index)].iloc[0]
            gal = []
            for gi in map(int, str(r.top10_gallery).split()):
                g = gallery.iloc[gi]
                ignored = g.pid == JUNK_PID or (g.pid == q.pid and g.camid == q.camid)
                gal.append(
                    {
                        "src": thumbnail_uri(g.path, 72),
                        "pid": g.pid,
                        "cam": g.camid + 1,
                        "cls": "" if ignored else ("hit" if g.pid == q.pid else "miss"),
                    }
                )
            query = {"src": thumbnail_uri(q.query_path), "pid": q.pid} if v == variants[0] else None
            rows.append({"query": query, "label": VARIANT_LABELS[v], "gallery": gal})
    return rows


def _log_head_and_size(log_file) -> tuple[str, tuple[int, int] | None]:
    """(where the stage ran, its outputs' size) from its log."""
    try:
        text = Path(log_file).read_text(errors="replace")
    except (OSError, TypeError):
        return "this host", None
    found = parse_run_location("\n".join(text.splitlines()[:20]))
    return (f"SLURM job {found[0]} on {found[1]}" if found else "this host"), parse_output_size(text)


def where_ran(log_file) -> str:
    """'SLURM job N on host' from the first lines of a stage log, else 'this host'."""
    return _log_head_and_size(log_file)[0]


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def stage_rows(benchmarks: list, logs: dict) -> list[dict]:
    """One row per benchmark file (stage = file stem): wall time, peak RSS, the disk its outputs took
    when written (temporary outputs included) and where it ran; ``logs`` maps stage -> log file."""
    rows = []
    for f in sorted(benchmarks, key=lambda p: Path(p).stem):
        b = pd.read_csv(f, sep="\t")
        if b.empty:
            continue
        r = b.iloc[-1]
        name = Path(f).stem
        where, size = _log_head_and_size(logs.get(name))
        rows.append(
            {
                "name": name,
                "seconds": f"{r['s']:.1f}",
                "rss": f"{r['max_rss']:.0f}",
                "where": where,
                "disk": _mb(size[0]) if size else "-",
                "files": f"{size[1]:,}" if size else "-",
            }
        )
    return rows


def provenance_context(config: dict, artifacts: dict) -> dict:
    here = Path(__file__).parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=here).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=here).stdout.strip()
    except OSError:
        commit, dirty = "unknown", ""
    packages = []
    for p in PACKAGES:
        try:
            packages.append((p, metadata.version(p)))
        except metadata.PackageNotFoundError:
            packages.append((p, "-"))
    return {
        "run": [
            ("git commit", commit + (" (with uncommitted changes)" if dirty else "")),
            ("python", platform.python_version()),
            ("machine", platform.platform()),
        ],
        "packages": packages,
        "artifacts": [(k, sha256_of(v)[:16], f"{os.path.getsize(v) / 2**20:.1f}") for k, v in artifacts.items()],
        "config": yaml.safe_dump(config, sort_keys=False),
    }


def images_per_s_lines(log_file) -> list[str]:
    """The C++ program's "images/s N (...)" lines in a stage log (none when the log is absent)."""
    if not log_file or not Path(log_file).is_file():
        return []
    return [ln for ln in Path(log_file).read_text().splitlines() if ln.startswith("images/s")]


def inference_rows(infer_logs: dict) -> list[tuple]:
    """(split, or split and shard when a split ran in several, images/s, the program's line) per images/s line."""
    rows = []
    for split, logs in infer_logs.items():
        for k, log_file in enumerate(logs):
            label = f"{split} shard {k + 1}/{len(logs)}" if len(logs) > 1 else split
            rows += [(label, line.split()[1], line) for line in images_per_s_lines(log_file)]
    return rows


def images_per_s(log_files) -> float | None:
    """The C++ program's last images/s in the logs of a split's shard jobs (their mean: the rate of one
    job), or None when no log has one."""
    found = [float(lines[-1].split()[1]) for lines in map(images_per_s_lines, log_files) if lines]
    return sum(found) / len(found) if found else None


def shard_logs(logs: dict, stage: str) -> list:
    """The log of each shard job of ``stage`` (e.g. infer_cpp_gallery), in shard order."""
    return [logs[k] for k in sorted((k for k in logs if k.startswith(f"{stage}.")), key=lambda k: int(k.rsplit(".", 1)[1]))]


def _size_mb(paths) -> str:
    return f"{sum(os.path.getsize(p) for p in paths) / 2**20:.1f}"


def precision_context(metrics: dict, parity: dict, logs: dict, models: dict, calibration: dict | None) -> dict | None:
    """The backend x precision table of an int8/bf16 run: gallery images/s, model size on disk, mAP and
    rank-1 of every variant, and the drop against fp32 (when the fp32 run was kept beside); None for fp32."""
    precision = metrics.get("precision", "fp32")
    if precision == "fp32":
        return None
    variants = [v for v in VARIANTS if v in metrics]
    rows = []
    runs = [("fp32", metrics.get("fp32"), shard_logs(logs, "infer_cpp_fp32_gallery"), models["fp32"])] if metrics.get("fp32") else []
    runs.append((precision, metrics, shard_logs(logs, "infer_cpp_gallery"), models[precision]))
    fp32_ips = images_per_s(runs[0][2]) if metrics.get("fp32") else None
    for prec, m, log_files, files in runs:
        ips = images_per_s(log_files)
        cells = []
        for v in variants:
            d = metrics.get("precision_drop", {}).get(v) if prec != "fp32" else None
            cells.append(
                {
                    "mAP": _pct(m[v]["mAP"]),
                    "rank1": _pct(m[v]["cmc"][0]),
                    "drop": f"{-d['mAP_points']:+.2f} / {-d['rank1_points']:+.2f}" if d else "",
                    "metric": f"{prec}.{v}",
                }
            )
        speedup = f"{ips / fp32_ips:.2f}x" if ips and fp32_ips and prec != "fp32" else ""
        rows.append({"precision": prec, "ips": f"{ips:.1f}" if ips else "-", "speedup": speedup, "mb": _size_mb(files), "cells": cells})
    low = parity.get("low_precision") or {}
    return {
        "precision": precision,
        "variants": [VARIANT_LABELS[v] for v in variants],
        "rows": rows,
        "compared": bool(metrics.get("fp32")),
        "max_map_drop": metrics.get("max_map_drop"),
        "calibration": calibration,
        "cosine": low.get("global_min_cosine"),
        "local_cosine": low.get("local_min_cosine"),
        "stripe_cosine": low.get("stripe_min_cosine"),
        "min_cosine": low.get("min_cosine"),
        "low_max_diff": low.get("max_abs_diff"),
    }


def render(context: dict) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False
    )
    return env.get_template(TEMPLATE).render(**context)


def write_report(out, inputs: dict, config: dict, benchmarks: list, logs: dict, infer_logs: dict, models: dict | None = None) -> None:
    """Render the report. ``inputs``: summary, eval_summary (optional: the evaluation dataset's
    when it is not the training one), gallery (the evaluated gallery manifest), train_summary, train_log, model, mindir, onnx,
    parity, metrics, per_query (paths), quick_eval (optional); ``benchmarks``: benchmark TSV files; ``logs``: stage -> log
    file (for where each stage ran); ``infer_logs``: split -> the C++ program's log of each shard; ``models``:
    precision -> the model files the C++ program ran (for the precision table; default: the ONNX
    export as fp32); ``inputs['calibration']`` (optional): the int8 calibration summary."""
    summary = json.loads(Path(inputs["summary"]).read_text())
    same = inputs.get("eval_summary") in (None, inputs["summary"])  # not cross-domain: one dataset
    eval_summary = summary if same else json.loads(Path(inputs["eval_summary"]).read_text())
    metrics = json.loads(Path(inputs["metrics"]).read_text())
    parity = json.loads(Path(inputs["parity"]).read_text())
    parity["ok"] = parity["max_abs_diff"] <= parity["tolerance"] or not parity["enforced"]  # parity.json as the parity stage writes it
    synthetic = "synthetic" in (summary["source"], eval_summary["source"])
    warnings = []
    if not parity["ok"]:
        warnings.append(f"C++ and Python features differ by {parity['max_abs_diff']:.2e}, above the {parity['tolerance']:g} tolerance.")
    if synthetic:
        warnings.append(
            f"Dataset: SYNTHETIC demo data (trained on {dataset_name(summary)}, evaluated on {dataset_name(eval_summary)}), not a real benchmark."
        )
    if config["pretrained"] is None:
        warnings.append("No pretrained checkpoint: the backbone was trained from scratch.")
    context = {
        "warnings": warnings,
        "results": results_context(metrics, summary, eval_summary),
        "verification": verification_section(metrics),
        "training": training_context(
            json.loads(Path(inputs["train_summary"]).read_text()),
            inputs["train_log"],
            json.loads(Path(inputs["quick_eval"]).read_text()) if inputs.get("quick_eval") else None,
        ),
        "parity": parity,
        "exports": [(Path(inputs[k]).name, f"{os.path.getsize(inputs[k]) / 2**20:.1f}") for k in ("mindir", "onnx")],
        "inference": inference_rows(infer_logs),
        "precision": precision_context(
            metrics,
            parity,
            logs,
            models or {"fp32": [inputs["onnx"]]},
            json.loads(Path(inputs["calibration"]).read_text()) if inputs.get("calibration") else None,
        ),
        "rank_lists": rank_list_rows(inputs["per_query"], inputs["gallery"]),
        "dataset": [
            [f"{role}: {s}", v["images"], v["ids"], len(v["cameras"]), v["distractors"], v["junk"], len(v["corrupt_skipped"])]
            for role, summ in (("training", summary), ("evaluation", eval_summary))
            for s, v in summ["splits"].items()
            if role == "training" or (eval_summary is not summary and s != "train")
        ],
        "flip": config["infer"]["flip"],
        "stages": stage_rows(benchmarks, logs),
        "results_mb": _mb(disk_usage([Path(out).parent])[0]),
        "provenance": provenance_context(config, {k: inputs[k] for k in ("model", "mindir", "onnx")}),
    }
    with atomic_path(out) as tmp:
        tmp.write_text(render(context))
