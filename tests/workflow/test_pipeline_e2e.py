"""The whole DAG on a tiny synthetic config, for real: train, export, C++ build and inference,
features, evaluation, report; then the caching and re-run behaviour users rely on."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from tests.conftest import copy_workflow, report_numbers, run_snakemake

pytestmark = pytest.mark.workflow

TINY = {
    "dataset": {
        "source": "synthetic",
        "synthetic": {"seed": 5, "train_ids": 8, "test_ids": 6, "images_per_id": 6, "cameras": 3, "queries_per_id": 2, "distractors": 4, "junk": 2},
    },
    "model": {"depth": 18, "height": 64, "width": 32},
    "train": {"epochs": 2, "batch_size": 16, "num_instances": 4, "lr_max": 0.01, "warmup_epochs": 1, "quick_eval": False},
    "export": {"batch_size": 1},
    "infer": {"batch_size": 4},
    "evaluation": {"max_rank": 10, "rerank": {"k1": 6, "k2": 3}, "parity_sample": 5},
}
ALL_JOBS = {
    "prepare_dataset",
    "train",
    "export",
    "build_infer",
    "preprocess",
    "infer_cpp",
    "features_cpp",
    "features_python",
    "parity",
    "evaluate",
    "report",
}


def planned_jobs(workdir, *args, override=None):
    files = ["tiny.yaml"]
    if override:  # a second config file (snakemake --config would pass nested numbers as strings)
        (workdir / "override.yaml").write_text(yaml.safe_dump(override))
        files.append("override.yaml")
    out = run_snakemake(workdir, "-n", "results/report.html", *args, "--configfile", *files).stdout
    if "Nothing to be done" in out:
        return set()
    block = out.split("Job stats:")[1].split("total")[0]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+\s*$", block, re.M)}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    dst = copy_workflow(tmp_path_factory.mktemp("e2e") / "repo")
    (dst / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    run_snakemake(dst, "results/report.html", "--configfile", "tiny.yaml")
    return dst


def test_full_dag_outputs(pipeline):
    r = pipeline / "results"
    metrics = json.loads((r / "eval/metrics.json").read_text())
    assert metrics["feature_source"] == "cpp"
    for v in ["global", "global_local", "global_rerank", "global_local_rerank"]:
        cmc = np.array(metrics[v]["cmc"])
        assert len(cmc) == 10 and np.all(np.diff(cmc) >= 0) and 0 < metrics[v]["mAP"] <= 1
    # the global numbers follow from the C++ feature files through the public evaluation API
    from alignedreid.evaluation import rank
    from alignedreid.evaluation.distance import global_distance
    from alignedreid.evaluation.features_io import load_features

    q, g = load_features(r / "features/cpp/query.npz"), load_features(r / "features/cpp/gallery.npz")
    cmc, mAP = rank(global_distance(q.global_, g.global_), q.pid, g.pid, q.camid, g.camid, max_rank=10)
    assert mAP == pytest.approx(metrics["global"]["mAP"], abs=1e-6)
    np.testing.assert_allclose(cmc, metrics["global"]["cmc"], atol=1e-6)
    for src, rows in (("cpp", 12), ("python", 5)):  # Python reference: a sample of parity_sample rows
        z = np.load(r / f"features/{src}/query.npz")
        assert z["global"].shape == (rows, 512) and z["local"].shape == (rows, 2, 512)  # 64 px high -> 2 stripes
        np.testing.assert_allclose(np.linalg.norm(z["local"], axis=2), 1.0, atol=1e-4)
        assert z["pid"].dtype == np.int64 and list(z["path"][:1])[0].endswith(".jpg")
    assert len(set(np.load(r / "features/python/query.npz")["row"])) == 5
    parity = json.loads((r / "features/parity.json").read_text())
    assert parity["max_abs_diff"] <= 1e-4 and parity["rows_compared"] == 10 and parity["ok"]
    # the C++ program's packed inputs and its outputs are temporary: gone once read
    assert not list((r / "infer/input").glob("*")) and not (r / "infer/output/query").exists()
    assert "outputs MB" in (r / "report.html").read_text()
    assert (r / "export/model.mindir").stat().st_size > 1e6 and (r / "export/model.onnx").stat().st_size > 1e6
    html = (r / "report.html").read_text()
    assert "SYNTHETIC" in html and "data:image/png;base64" in html
    assert "<span data-where='train'>this host</span>" in html  # not a cluster run
    assert re.search(r"images/s \d", (r / "logs/infer_cpp_gallery.log").read_text())
    for rule in ["train", "export", "evaluate", "build_infer"]:
        assert (r / f"benchmarks/{rule}.tsv").is_file()


def test_second_run_does_nothing(pipeline):
    assert planned_jobs(pipeline) == set()


def test_evaluation_change_reruns_only_evaluate_and_report(pipeline):
    assert planned_jobs(pipeline, override={"evaluation": {"rerank": {"k1": 5}}}) == {"evaluate", "report"}
    # evaluating the Python features needs them for every image, not the parity sample
    assert planned_jobs(pipeline, override={"evaluation": {"feature_source": "python"}}) == {"features_python", "parity", "evaluate", "report"}


def test_export_change_never_retrains(pipeline):
    jobs = planned_jobs(pipeline, override={"export": {"batch_size": 2}})
    assert "export" in jobs and "train" not in jobs and "prepare_dataset" not in jobs
    assert {"infer_cpp", "features_cpp", "evaluate", "report"} <= jobs


def test_forcerun_and_until(pipeline):
    assert planned_jobs(pipeline, "--forcerun", "evaluate") == {"evaluate", "report"}
    assert planned_jobs(pipeline, "-R", "export") >= {"export", "infer_cpp", "report"}


def test_editing_code_reruns_its_rule(pipeline):
    mod = pipeline / "src/alignedreid/evaluation/ranking.py"
    mod.write_text(mod.read_text() + "\n# edited\n")
    jobs = planned_jobs(pipeline)
    assert jobs == {"evaluate", "report"}
    script = pipeline / "workflow/scripts/export.py"
    script.write_text(script.read_text() + "\n# edited\n")
    jobs = planned_jobs(pipeline)
    assert "export" in jobs and "train" not in jobs


def test_report_numbers_equal_metrics(pipeline):
    html = (pipeline / "results/report.html").read_text()
    metrics = json.loads((pipeline / "results/eval/metrics.json").read_text())
    shown = report_numbers(html)
    assert len(shown) >= 4 * 4 + 1  # max_rank 10: mAP, R1, R5, R10 per variant, and parity
    for v in ["global", "global_local", "global_rerank", "global_local_rerank"]:
        assert float(shown[f"{v}.mAP"]) == pytest.approx(100 * metrics[v]["mAP"], abs=0.05)
        for r in (1, 5, 10):
            assert float(shown[f"{v}.R{r}"]) == pytest.approx(100 * metrics[v]["cmc"][r - 1], abs=0.05)
    parity = json.loads((pipeline / "results/features/parity.json").read_text())
    assert float(shown["parity"]) == pytest.approx(parity["max_abs_diff"], rel=0.01, abs=1e-12)


def test_cpp_program_errors_are_clear(pipeline, tmp_path):
    exe = pipeline / "results/infer/bin/aligned_infer"
    onnx = pipeline / "results/export/model.onnx"

    def run(*a):
        return subprocess.run([str(exe), *map(str, a)], capture_output=True, text=True)

    p = run("--model", tmp_path / "none.onnx", "--input_dir", tmp_path, "--output_dir", tmp_path / "o")
    assert p.returncode == 1 and "model file not found" in p.stderr
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "000000.bin").write_bytes(b"\0" * 100)
    p = run("--model", onnx, "--input_dir", tmp_path / "in", "--output_dir", tmp_path / "o", "--height", 64, "--width", 32)
    assert p.returncode == 1 and "000000.bin: 100 bytes, expected 24576" in p.stderr
    p = run("--model", onnx, "--batch", "x")
    assert p.returncode == 2
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    np.zeros(3 * 64 * 32, np.float32).tofile(tmp_path / "in" / "000000.bin")
    p = run("--model", tmp_path / "bad.onnx", "--input_dir", tmp_path / "in", "--output_dir", tmp_path / "o", "--height", 64, "--width", 32)
    assert p.returncode == 1 and "OpenVINO could not load" in p.stderr


def test_report_renders_in_a_browser(pipeline, tmp_path):
    """Headless Chromium (Debian package, installed by .ci/run) renders the page to a screenshot
    that shows content: plots and thumbnails are embedded, nothing is fetched."""
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed (.ci/run installs Debian's chromium)"
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            (pipeline / "results/report.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (2400, 1200)
    assert img.std() > 20  # not a blank page
    assert (img < 128).mean() > 0.02  # text, tables, plots and thumbnails
