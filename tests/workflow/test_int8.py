"""INT8 serving on the demo pipeline, for real: quantise the export (NNCF, calibrated on training
images), run the quantised IR in the C++ program beside the fp32 run of the same model, evaluate both,
report the precision table; and what re-runs when only the precision settings change."""

import json
import re

import pandas as pd
import pytest
import yaml

from tests.conftest import report_numbers, run_pipeline, run_snakemake, tiny_config

pytestmark = pytest.mark.workflow

TINY_INT8 = tiny_config(
    dataset={"synthetic": {"seed": 7}},
    train={"quick_eval": False},
    infer={"precision": "int8", "calibration": {"size": 24, "seed": 3}, "max_map_drop": None},
)


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory):
    return run_pipeline(tmp_path_factory.mktemp("int8"), TINY_INT8, name="int8.yaml")


def test_int8_pipeline_outputs(int8_run):
    r = int8_run / "results"
    cal = json.loads((r / "quantize/calibration.json").read_text())
    assert cal["calibration_images"] == 24 and cal["calibration_seed"] == 3 and cal["preset"] == "PERFORMANCE"
    train = set(pd.read_csv(r / "data/train.csv").path)
    assert set(cal["images"]) <= train  # training images only
    assert (r / "quantize/model.bin").stat().st_size < 0.5 * (r / "export/model.onnx").stat().st_size  # int8 weights
    log = (r / "logs/infer_cpp_gallery.0.log").read_text()
    assert "openvino-cpu" in log and " int8 " in log and "images/s" in log
    assert "ONEDNN_MAX_CPU_ISA unset" in log  # the C++ program runs with the CPU's own ISA
    assert " fp32 " in (r / "logs/infer_cpp_fp32_gallery.0.log").read_text()
    metrics = json.loads((r / "eval/metrics.json").read_text())
    assert metrics["precision"] == "int8" and set(metrics["fp32"]) >= {"global", "global_local_rerank"}
    for v in ("global", "global_local", "global_rerank", "global_local_rerank"):
        assert 0 < metrics[v]["mAP"] <= 1 and 0 < metrics["fp32"][v]["mAP"] <= 1
        assert metrics["precision_drop"][v]["mAP_points"] == pytest.approx(100 * (metrics["fp32"][v]["mAP"] - metrics[v]["mAP"]))
    parity = json.loads((r / "features/parity.json").read_text())
    assert parity["enforced"] and parity["precision"] == "fp32" and parity["ok"]  # fp32 C++ vs the fp32 reference
    assert parity["low_precision"]["precision"] == "int8" and 0.9 < parity["low_precision"]["global_min_cosine"] <= 1.0
    html = (r / "report.html").read_text()
    assert "Precision: int8 against fp32" in html and "Calibration: 24 images of the training split" in html
    nums = report_numbers(html)
    assert float(nums["int8.global.mAP"]) == pytest.approx(100 * metrics["global"]["mAP"], abs=0.06)
    assert float(nums["fp32.global.mAP"]) == pytest.approx(100 * metrics["fp32"]["global"]["mAP"], abs=0.06)


def _plan(workdir, override):
    (workdir / "override.yaml").write_text(yaml.safe_dump(override))
    out = run_snakemake(workdir, "-n", "results/report.html", "--configfile", "int8.yaml", "override.yaml").stdout
    if "Nothing to be done" in out:
        return set()
    block = out.split("Job stats:")[1].split("total")[0]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+\s*$", block, re.M)}


def test_precision_settings_rerun_only_what_they_change(int8_run):
    assert _plan(int8_run, {}) == set()
    jobs = _plan(int8_run, {"infer": {"calibration": {"size": 20}}})
    # the packed inputs are temporary: written again for the int8 run, they re-run the fp32 run as well
    # (Snakemake re-runs every consumer of a re-run job); training and export stay
    assert {"quantize", "infer_cpp", "evaluate"} <= jobs and not {"train", "export", "features_python"} & jobs
    assert _plan(int8_run, {"infer": {"max_map_drop": 5.0}}) == {"evaluate", "report"}
    jobs = _plan(int8_run, {"infer": {"compare_fp32": False}})
    assert not {"infer_cpp_fp32", "train", "quantize", "infer_cpp"} & jobs and {"evaluate", "parity"} <= jobs
