"""The report (report.py) rendered from hand-made stage outputs."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from alignedreid.config import resolve
from alignedreid.contracts import VARIANTS
from alignedreid.evaluation.features_io import save_features
from alignedreid.evaluation.run import run_evaluation
from alignedreid.io_utils import write_json
from alignedreid.report import write_report
from tests.conftest import report_numbers


def _stage_outputs(tmp_path, parity_diff=2e-6):
    rng = np.random.default_rng(0)
    imgs = []
    for i in range(6):
        p = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(p)
        imgs.append(str(p))
    pd.DataFrame({"path": imgs, "pid": [1, 1, 2, 2, -1, 0], "camid": [0, 1, 0, 1, 2, 2]}).to_csv(tmp_path / "gallery.csv", index=False)
    q = pd.DataFrame({"path": imgs[:2], "pid": [1, 2], "camid": [2, 2]})
    gl = rng.standard_normal((6, 8)).astype(np.float32)
    loc = rng.standard_normal((6, 2, 8)).astype(np.float32)
    save_features(tmp_path / "q.npz", gl[:2], loc[:2], q.pid, q.camid, q.path)
    save_features(tmp_path / "g.npz", gl, loc, [1, 1, 2, 2, -1, 0], [0, 1, 0, 1, 2, 2], imgs)
    ev = resolve({"evaluation": {"max_rank": 4, "rerank": {"k1": 3, "k2": 2}}})["evaluation"]
    run_evaluation(tmp_path / "q.npz", tmp_path / "g.npz", tmp_path / "metrics.json", tmp_path / "per_query.csv", ev, threads=1)
    split = {"images": 6, "ids": 2, "cameras": [0, 1, 2], "distractors": 1, "junk": 1, "corrupt_skipped": []}
    write_json(tmp_path / "summary.json", {"source": "synthetic", "splits": {"train": split, "query": split, "gallery": split}})
    write_json(
        tmp_path / "train_summary.json",
        {
            "num_classes": 2,
            "steps_per_epoch": 3,
            "epochs": 1,
            "max_steps": None,
            "world_size": 1,
            "final_loss": 1.5,
            "median_images_per_s": 40.0,
            "median_step_s": 0.8,
            "device_target": "CPU",
            "execution": "graph",
            "depth": 18,
            "height": 64,
            "width": 32,
        },
    )
    pd.DataFrame(
        [[1, s, s, 0.01, 2.0 - s / 10, 1, 0.5, 0.4, 40.0] for s in (1, 2, 3)],
        columns=["epoch", "step", "global_step", "lr", "loss", "id_loss", "triplet_loss", "local_loss", "images_per_s"],
    ).to_csv(tmp_path / "log.csv", index=False)
    for name in ("model.ckpt", "model.mindir", "model.onnx"):
        (tmp_path / name).write_bytes(b"x" * 100)
    write_json(
        tmp_path / "parity.json", {"global_max_abs_diff": parity_diff, "local_max_abs_diff": 1e-7, "max_abs_diff": parity_diff, "tolerance": 1e-4}
    )
    bench, logs = [], {}
    for stage in ("train", "infer_cpp_query", "infer_cpp_gallery"):
        (tmp_path / f"{stage}.tsv").write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t812.0\n")
        line = "running in SLURM job 77 on node3 (partition p, cpus 2, nodes 1)" if stage == "train" else "images/s 250.5 (6 images)"
        (tmp_path / f"{stage}.log").write_text(f"2026-01-01 INFO x: {line}\n" if stage == "train" else f"{line}\n")
        bench.append(str(tmp_path / f"{stage}.tsv"))
        logs[stage] = str(tmp_path / f"{stage}.log")
    inputs = {
        "summary": tmp_path / "summary.json",
        "gallery": tmp_path / "gallery.csv",
        "train_summary": tmp_path / "train_summary.json",
        "train_log": tmp_path / "log.csv",
        "model": tmp_path / "model.ckpt",
        "mindir": tmp_path / "model.mindir",
        "onnx": tmp_path / "model.onnx",
        "parity": tmp_path / "parity.json",
        "metrics": tmp_path / "metrics.json",
        "per_query": tmp_path / "per_query.csv",
    }
    return inputs, bench, logs


def test_report_shows_the_numbers_it_was_given(tmp_path):
    inputs, bench, logs = _stage_outputs(tmp_path)
    config = resolve({})
    write_report(tmp_path / "report.html", inputs, config, bench, logs, {s: logs[f"infer_cpp_{s}"] for s in ("query", "gallery")})
    html = (tmp_path / "report.html").read_text()
    m = json.loads((tmp_path / "metrics.json").read_text())
    shown = report_numbers(html)
    for v in VARIANTS:
        assert float(shown[f"{v}.mAP"]) == pytest.approx(100 * m[v]["mAP"], abs=0.05)
    assert float(shown["parity"]) == pytest.approx(2e-6, rel=0.01)
    assert "<span data-where='train'>SLURM job 77 on node3</span>" in html
    assert "<span data-where='infer_cpp_query'>this host</span>" in html
    assert "800 ms (seed: 79 ms on one Ascend 910)" in html and "250.5" in html
    assert "SYNTHETIC" in html and "trained from scratch" in html and "ABOVE" not in html
    assert not re.search(r"{{|{%", html)  # the template rendered completely


def test_report_flags_parity_beyond_tolerance_on_top(tmp_path):
    inputs, bench, logs = _stage_outputs(tmp_path, parity_diff=3e-3)
    write_report(tmp_path / "r.html", inputs, resolve({}), bench, logs, {s: logs[f"infer_cpp_{s}"] for s in ("query", "gallery")})
    html = (tmp_path / "r.html").read_text()
    body = html.split("<h1>")[1]
    assert body.index("C++ and Python features differ by 3.00e-03") < body.index("<h2>")  # a warning above every section
    assert "ABOVE" in html


@pytest.mark.parametrize(
    "train_src,eval_src,seed_shown,names",
    [
        ("market1501", None, True, ("Market-1501", "Market-1501")),
        ("market1501", "cuhk03", False, ("Market-1501", "CUHK03-NP detected")),
        ("dukemtmc", None, False, ("DukeMTMC-reID", "DukeMTMC-reID")),
    ],
)
def test_report_names_datasets_and_shows_seed_only_for_market(tmp_path, train_src, eval_src, seed_shown, names):
    inputs, bench, logs = _stage_outputs(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    write_json(tmp_path / "summary.json", {**summary, "source": train_src})
    if eval_src:
        write_json(tmp_path / "eval_summary.json", {**summary, "source": eval_src, "cuhk03_images": "detected"})
        inputs["eval_summary"] = tmp_path / "eval_summary.json"
    write_report(tmp_path / "r.html", inputs, resolve({}), bench, logs, {s: logs[f"infer_cpp_{s}"] for s in ("query", "gallery")})
    html = (tmp_path / "r.html").read_text()
    assert ("seed mAP" in html) is seed_shown
    assert f'<b data-fact="trained_on">{names[0]}</b>' in html and f'<b data-fact="evaluated_on">{names[1]}</b>' in html
    assert ("(cross-domain)" in html) is bool(eval_src) and '<b data-fact="flip">off</b>' in html
    assert "SYNTHETIC" not in html


def test_report_says_when_shortlists_ranked_the_local_variants(tmp_path):
    inputs, bench, logs = _stage_outputs(tmp_path)
    infer_logs = {s: logs[f"infer_cpp_{s}"] for s in ("query", "gallery")}
    write_report(tmp_path / "exact.html", inputs, resolve({}), bench, logs, infer_logs)
    assert 'data-fact="shortlist"' not in (tmp_path / "exact.html").read_text()
    m = json.loads((tmp_path / "metrics.json").read_text())
    write_json(tmp_path / "metrics.json", {**m, "shortlist": 200})
    write_report(tmp_path / "short.html", inputs, resolve({}), bench, logs, infer_logs)
    assert '<b data-fact="shortlist">200</b>' in (tmp_path / "short.html").read_text()
