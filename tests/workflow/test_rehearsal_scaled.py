"""config/rehearsal.yaml at 1/20 of Market-1501 (same count ratios, junk and distractors included),
through the real DAG: ResNet-50 at 256x128, bounded training, export, C++ inference, parity on a
sample, evaluation, report. Then the same model as a given checkpoint (model.checkpoint), served in INT8
beside its fp32 run through the C++ program's other file layout (infer.io: files): the fp32 metrics must
not change, and the INT8 ones stay finite and within infer.max_map_drop."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, copy_workflow, merge_config, run_snakemake

pytestmark = pytest.mark.workflow

SCALED = {  # Market-1501 / 20
    "dataset": {
        "synthetic": {
            "train_ids": 38,
            "test_ids": 38,
            "train_images": 647,
            "query_images": 168,
            "gallery_images": 656,
            "distractors": 140,
            "junk": 191,
        }
    },
    "train": {"max_steps": 3},
    "evaluation": {"parity_sample": 32},
}


def _config(dst, name, extra):
    cfg = yaml.safe_load((REPO / "config" / "rehearsal.yaml").read_text())
    merge_config(merge_config(cfg, SCALED), extra)
    (dst / name).write_text(yaml.safe_dump(cfg))
    return name


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    dst = copy_workflow(tmp_path_factory.mktemp("rehearsal") / "repo")
    run_snakemake(dst, "results/report.html", "--configfile", _config(dst, "scaled.yaml", {}), timeout=3600)
    return dst


def test_scaled_rehearsal_runs_the_recipe(rehearsal):
    r = rehearsal / "results"
    summary = json.loads((r / "data/summary.json").read_text())["splits"]
    assert summary["train"]["images"] == 647 and summary["train"]["ids"] == 38
    assert summary["query"]["images"] == 168
    assert summary["gallery"]["images"] == 656 + 140 + 191 and summary["gallery"]["junk"] == 191
    assert summary["gallery"]["distractors"] == 140 and len(summary["gallery"]["cameras"]) == 6
    ts = json.loads((r / "train/train_summary.json").read_text())
    assert ts["depth"] == 50 and (ts["height"], ts["width"]) == (256, 128) and ts["execution"] == "graph"
    assert len(pd.read_csv(r / "train/log.csv")) == 3  # train.max_steps
    g = np.load(r / "features/cpp/gallery.npz")
    assert g["global"].shape == (987, 2048) and g["local"].shape == (987, 8, 2048)
    parity = json.loads((r / "features/parity.json").read_text())
    assert parity["ok"] and parity["rows_compared"] == 64
    metrics = json.loads((r / "eval/metrics.json").read_text())
    assert metrics["num_gallery"] == 987 and all(v in metrics for v in ("global", "global_local", "global_rerank", "global_local_rerank"))
    html = (r / "report.html").read_text()
    assert (r / "report.html").stat().st_size < 5 * 2**20
    assert "79 ms on one Ascend 910" in html and "outputs MB" in html


@pytest.fixture(scope="module")
def given_int8(rehearsal, tmp_path_factory):
    """The rehearsal's model as a given checkpoint (model.checkpoint), served in INT8 with the fp32 run
    of the same model beside, through the C++ program's per-image files (infer.io: files): one run that
    the two tests below read (the dry run first: the checkpoint replaces training)."""
    dst = copy_workflow(tmp_path_factory.mktemp("given_int8") / "repo")
    ckpt = rehearsal / "results/train/model.ckpt"
    extra = {"model": {"checkpoint": str(ckpt)}, "infer": {"io": "files", "precision": "int8", "calibration": {"size": 64}}}
    name = _config(dst, "int8.yaml", extra)
    plan = run_snakemake(dst, "-n", "results/report.html", "--configfile", name).stdout
    run_snakemake(dst, "results/report.html", "--configfile", name, timeout=3600)
    return dst, plan


def test_given_checkpoint_and_per_image_files_give_the_same_metrics(rehearsal, given_int8):
    """The fp32 C++ features of the given checkpoint, read through per-image files, evaluate exactly as
    the rehearsal's own (packed inputs, trained in the run)."""
    dst, plan = given_int8
    assert "import_checkpoint" in plan and "rule train:" not in plan
    assert len(list((dst / "results/logs").glob("preprocess_*.log"))) == 2
    assert "--input_dir" in (dst / "results/logs/infer_cpp_fp32_gallery.0.log").read_text()  # per-image files
    a = json.loads((rehearsal / "results/eval/metrics.json").read_text())
    b = json.loads((dst / "results/eval/metrics.json").read_text())["fp32"]
    for v in ("global", "global_local", "global_rerank", "global_local_rerank"):
        assert b[v]["mAP"] == pytest.approx(a[v]["mAP"], abs=1e-6)
        np.testing.assert_allclose(b[v]["cmc"], a[v]["cmc"], atol=1e-6)
    assert "given checkpoint (not trained in this run)" in (dst / "results/report.html").read_text()


def test_checkpoint_of_another_model_is_refused(rehearsal, tmp_path):
    dst = copy_workflow(tmp_path / "repo")
    ckpt = rehearsal / "results/train/model.ckpt"
    name = _config(dst, "bad.yaml", {"model": {"checkpoint": str(ckpt), "depth": 18}})
    proc = run_snakemake(dst, "results/train/model.ckpt", "--configfile", name, check=False)
    assert proc.returncode != 0
    assert "[import_checkpoint] error:" in proc.stderr
    assert "has shape" in proc.stderr and "a ResNet-18 AlignedReID network expects" in proc.stderr


def test_int8_at_resnet50_256x128_is_finite_and_within_the_drop(given_int8):
    """INT8 serving of the rehearsal's ResNet-50 (256x128, 8 x 2048 stripes) with the fp32 run beside:
    quantisation keeps the heads in float, every feature is finite, parity holds the int8 features to
    infer.min_cosine, every variant is within infer.max_map_drop of fp32 and the report gives the speed ratio."""
    dst, _ = given_int8
    r = dst / "results"
    cal = json.loads((r / "quantize/calibration.json").read_text())
    assert any("Sqrt" in n for n in cal["float_heads"]) and any("ReduceMax" in n for n in cal["float_heads"])
    for source in ("cpp", "cpp_fp32"):
        for split in ("query", "gallery"):
            z = np.load(r / f"features/{source}/{split}.npz")
            assert np.isfinite(z["global"]).all() and np.isfinite(z["local"]).all(), (source, split)
            assert z["local"].shape[1:] == (8, 2048)
            np.testing.assert_allclose(np.linalg.norm(z["local"], axis=2), 1.0, atol=1e-3)
    low = json.loads((r / "features/parity.json").read_text())["low_precision"]
    assert low["global_min_cosine"] >= low["min_cosine"] and low["local_min_cosine"] >= low["min_cosine"]
    metrics = json.loads((r / "eval/metrics.json").read_text())
    assert metrics["precision"] == "int8" and set(metrics["precision_drop"]) == {"global", "global_local", "global_rerank", "global_local_rerank"}
    for v, d in metrics["precision_drop"].items():
        assert d["mAP_points"] <= metrics["max_map_drop"], (v, d)
        assert np.isfinite(metrics[v]["mAP"]) and np.isfinite(metrics["fp32"][v]["mAP"])
    html = (r / "report.html").read_text()
    assert "Precision: int8 against fp32" in html and re.search(r"\d+\.\d\dx", html)
