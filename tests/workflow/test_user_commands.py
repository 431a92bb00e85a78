"""The README's commands as a user types them: ``.venv/bin/snakemake ...`` in a shell whose PATH does
not hold the virtual environment (nothing activated), numbers overridden with --config, and the
device check that stops a GPU/Ascend run before any heavy stage."""

import json
import re
import shutil
import zipfile

import pytest
import yaml

from tests.conftest import REPO, TINY, USER_COMMAND, copy_workflow, planned_resources, shell, user_repo
from tests.market_fixture import make_market

pytestmark = pytest.mark.workflow


def readme_commands() -> list[str]:
    """Every ``.venv/bin/snakemake --cores ...`` command of the README, continuation lines joined."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    joined = [ln for b in blocks for ln in b.replace("\\\n", " ").splitlines()]
    return [re.sub(r"\s+", " ", ln.split(" #")[0]).strip() for ln in joined if ln.startswith(".venv/bin/snakemake --cores")]


def test_the_readme_has_the_commands_this_test_runs():
    cmds = readme_commands()
    assert any("config/market1501.yaml" in c for c in cmds) and any("config/rehearsal.yaml" in c for c in cmds)
    assert any("results/search/report.html" in c for c in cmds) and any("precision: int8" in c for c in cmds)
    assert all(c.split()[3].startswith("results/") for c in cmds)  # the target before --configfile/--config


def test_readme_commands_plan_without_the_venv_on_path(tmp_path):
    """Each README command, its Market-1501 zip replaced by a small Market-layout zip, plans its DAG
    (dry run) from a shell where nothing is activated."""
    repo = user_repo(tmp_path)
    make_market(tmp_path / "m")
    market_zip = tmp_path / "Market-1501-v15.09.15.zip"
    with zipfile.ZipFile(market_zip, "w") as zf:
        for p in sorted((tmp_path / "m").rglob("*")):
            zf.write(p, "Market-1501-v15.09.15/" + p.relative_to(tmp_path / "m").as_posix())
    for folder in ("my_crops", "cctv_crops"):  # the search commands' folders
        (tmp_path / folder).mkdir()
        shutil.copy(next((tmp_path / "m" / "query").glob("*.jpg")), tmp_path / folder / "a.jpg")
    for cmd in readme_commands():
        cmd = cmd.replace("/data/Market-1501-v15.09.15.zip", str(market_zip))
        cmd = cmd.replace("/data/my_crops", str(tmp_path / "my_crops")).replace("/data/cctv_crops", str(tmp_path / "cctv_crops"))
        proc = shell(repo, cmd + " -n")
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        target_rule = "rule search:" if "results/search/" in cmd else "rule report:"
        assert "rule train:" in proc.stdout and target_rule in proc.stdout, cmd
        if "precision: int8" in cmd:
            assert "rule quantize:" in proc.stdout and "rule infer_cpp_fp32:" in proc.stdout
        if "market1501.yaml" in cmd:  # the Ascend recipe: the device is checked before the dataset stage
            assert proc.stdout.index("rule check_device:") < proc.stdout.index("rule prepare_dataset:")


def test_demo_runs_without_the_venv_on_path_with_a_numeric_override(pipeline):
    """A whole run started as `.venv/bin/snakemake` with nothing activated (rule build_infer finds
    OpenVINO through the project's Python, not `python3` on PATH), numbers given on the command line:
    the session's shared run is started that way (conftest.USER_COMMAND)."""
    repo = pipeline
    assert "--config train='{epochs: 2, max_steps: 4}'" in USER_COMMAND and USER_COMMAND.startswith(".venv/bin/snakemake ")
    summary = json.loads((repo / "results/train/train_summary.json").read_text())
    assert summary["epochs"] == 2 and summary["max_steps"] == 4  # command-line strings became the schema's integers
    assert (repo / "results/report.html").is_file() and (repo / "results/infer/bin/aligned_infer").is_file()
    again = shell(repo, USER_COMMAND + " -n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout  # the override is stable: nothing re-runs
    built = (repo / "results/infer/bin/aligned_infer").stat().st_mtime_ns
    forced = shell(repo, USER_COMMAND + " --forcerun build_infer")  # the README's "Real Market-1501" section's way
    assert forced.returncode == 0, forced.stderr[-5000:]
    assert (repo / "results/infer/bin/aligned_infer").stat().st_mtime_ns > built
    assert "openvino has" not in (repo / "results/logs/build_infer.log").read_text()
    assert "Nothing to be done" in shell(repo, USER_COMMAND + " -n").stdout


@pytest.mark.parametrize("target", ["GPU", "Ascend"])
def test_device_check_stops_a_gpu_run_before_the_dataset(tmp_path, target):
    repo = user_repo(tmp_path)
    (repo / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    proc = shell(repo, f".venv/bin/snakemake --cores 2 results/report.html --configfile tiny.yaml --config train='{{device_target: {target}}}'")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"train.device_target {target}: MindSpore cannot compute on {target} device 0" in out and "Needed: MindSpore 2.10's" in out
    assert not (repo / "results/data/train.csv").exists() and not (repo / "results/device/check.json").exists()


@pytest.mark.parametrize(
    "train,export_formats,check,export",
    [
        ({"device_target": "GPU", "device_num": 8}, ["MINDIR", "ONNX"], {"gpu": "1"}, {}),
        ({"device_target": "Ascend", "device_num": 8}, ["MINDIR", "ONNX"], {"gres": "npu:1"}, {}),
        ({"device_target": "Ascend", "device_num": 8}, ["MINDIR", "ONNX", "AIR"], {"gres": "npu:1"}, {"gres": "npu:1"}),
    ],
)
def test_cluster_requests_of_the_device_check_and_export(tmp_path, train, export_formats, check, export):
    """check_device asks for one accelerator; export runs on the CPU unless AIR is asked for on Ascend;
    features_python (the float32 reference) never asks for one."""
    repo = copy_workflow(tmp_path / "repo")
    cfg = {"train": train, "export": {"formats": export_formats}}
    res = planned_resources(repo, "check_device", "results/report.html", cfg)
    assert {k: res.get(k) for k in check} == check
    res = planned_resources(repo, "export", "results/report.html", cfg)
    assert {k: res.get(k) for k in ("gpu", "gres") if k in res} == export
    res = planned_resources(repo, "features_python", "results/report.html", cfg)
    assert "gpu" not in res and "gres" not in res


@pytest.mark.parametrize(
    "train,infer,want",
    [
        ({"device_target": "Ascend", "device_num": 8}, {"backend": "ascend", "batch_size": 1, "shards": 2}, {"gres": "npu:1"}),
        ({"device_target": "GPU", "device_num": 8}, {"backend": "cpu", "shards": 2}, {}),
    ],
)
def test_cluster_requests_of_each_inference_shard(tmp_path, train, infer, want):
    """Each infer_cpp and search_features shard job asks for one accelerator on the ascend backend (the
    MindSpore C++ API on the MindIR export), none on the cpu backend (OpenVINO), whatever trained the model."""
    repo = copy_workflow(tmp_path / "repo")
    cfg = {"train": train, "infer": infer, "export": {"batch_size": 1}}
    res = planned_resources(repo, "infer_cpp", "results/report.html", cfg)
    assert {k: res[k] for k in ("gpu", "gres") if k in res} == want
    (tmp_path / "crops").mkdir()
    search = {**cfg, "search": {"queries": str(tmp_path / "crops"), "shards": 2}}
    res = planned_resources(repo, "search_features", "results/search/report.html", search)
    assert {k: res[k] for k in ("gpu", "gres") if k in res} == want
