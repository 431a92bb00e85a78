"""The cluster profile against a real SLURM: a single-node cluster from Debian's packages is started
on this machine (tests/cluster/local_slurm.sh, as root), the synthetic DAG goes through
``--profile profiles/slurm``, and the heavy rules must have run as SLURM jobs while the report
matches a local run of the same configuration. Without root or SLURM the tests fail with the
reason; they never skip.

The DAG test runs the workflow tests' configuration (conftest.TINY, every heavy rule including
quick_eval; inference in infer.shards 2: a SLURM job per shard) through SLURM and compares it with
the session's local run of the same configuration in one shard (the shared ``pipeline`` fixture, made
while the SLURM run waits on the scheduler): a few minutes on 2 cores. ALIGNEDREID_CLUSTER_CONFIG=demo runs the
embedded demo configuration (config/config.yaml) both ways instead (about 15 minutes)."""

import copy
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO, TINY, copy_workflow, finish_snakemake, merge_config, report_numbers, run_snakemake, start_snakemake

pytestmark = pytest.mark.cluster

SCRIPT = REPO / "tests" / "cluster" / "local_slurm.sh"
HEAVY = {"prepare_dataset", "train", "quick_eval", "export", "build_infer", "preprocess", "infer_cpp", "features_python", "evaluate"}
LOCAL = {"features_cpp", "features_python_join", "evaluation_store", "parity", "report"}
# status polling every few seconds instead of the profile's 20 s, so the test does not wait on it
FAST_POLL = ("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1")


def _slurm_cmd(*args):
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    return subprocess.run([*prefix, str(SCRIPT), *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def slurm():
    if os.geteuid() != 0 and not shutil.which("sudo"):
        pytest.fail("the cluster tests start SLURM daemons and need root (or password-less sudo)")
    for step in ("install", "start"):
        p = _slurm_cmd(step)
        if p.returncode != 0:
            pytest.fail(f"could not {step} the local SLURM ({SCRIPT} {step}, exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
    yield
    _slurm_cmd("stop")


SHARDS = 2  # the SLURM run splits each split's inference in two jobs; the local run has one shard


def _config():
    if os.environ.get("ALIGNEDREID_CLUSTER_CONFIG") == "demo":
        return yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return TINY


def _workdir(root, name, cfg):
    d = copy_workflow(root / name)  # the profiles too (profiles/slurm and the workflow profile)
    (d / "run.yaml").write_text(yaml.safe_dump(cfg))
    return d


def _submitted(output: str) -> dict[str, list[str]]:
    """rule -> SLURM job ids, from snakemake's 'submitted with SLURM jobid' lines."""
    jobs: dict[str, list[str]] = {}
    for m in re.finditer(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/", output):
        jobs.setdefault(m.group(2), []).append(m.group(1))
    return jobs


def _job_state(jobid: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", jobid], capture_output=True, text=True).stdout
    m = re.search(r"JobState=(\w+)", out)
    return m.group(1) if m else f"unknown ({out.strip()[:200]})"


def test_dag_through_slurm_matches_local_run(slurm, tmp_path, request):
    cfg = _config()
    on_slurm = _workdir(tmp_path, "slurm", merge_config(copy.deepcopy(cfg), {"infer": {"shards": SHARDS}}))
    running = start_snakemake(on_slurm, "results/report.html", "--profile", "profiles/slurm", *FAST_POLL, "--configfile", "run.yaml")
    # the local run of the same configuration is made while the SLURM run waits on the scheduler
    # (most of its time: status polls, the executor's pause before each sbatch, each job parsing the workflow)
    try:
        if cfg is TINY:
            local = request.getfixturevalue("pipeline")  # the session's local run of TINY
        else:
            local = _workdir(tmp_path, "local", cfg)
            run_snakemake(local, "results/report.html", "--configfile", "run.yaml", timeout=3600)
        proc = finish_snakemake(running, timeout=3600)
    finally:
        if running.poll() is None:  # the local run failed: do not leave the SLURM run behind
            running.kill()
            finish_snakemake(running, check=False)
    out = proc.stdout + proc.stderr
    jobs = _submitted(out)

    # every heavy rule went to SLURM and finished there; the light ones stayed on this host
    assert set(jobs) == HEAVY, f"submitted to SLURM: {sorted(jobs)}\n{out[-3000:]}"
    assert len(jobs["features_python"]) == 2  # query, gallery
    assert len(jobs["preprocess"]) == len(jobs["infer_cpp"]) == 2 * SHARDS  # a SLURM job per shard of each split
    for rule, ids in jobs.items():
        for jobid in ids:
            assert _job_state(jobid) == "COMPLETED", f"{rule}: SLURM job {jobid} is {_job_state(jobid)}"
    for rule in LOCAL:
        assert f"localrule {rule}:" in out
    # the stages' own logs name the SLURM job they ran in
    logs = on_slurm / "results" / "logs"
    for rule, log in [("prepare_dataset", "prepare_dataset.log"), ("train", "train.log"), ("export", "export.log"), ("evaluate", "evaluate.log")]:
        assert f"running in SLURM job {jobs[rule][0]} on " in (logs / log).read_text(), log
    for split_log in ["features_python_query.0.log", "features_python_gallery.0.log"]:
        assert re.search(r"running in SLURM job (\d+) on ", (logs / split_log).read_text()).group(1) in jobs["features_python"]
    # ... and so does the report's stage table
    html = (on_slurm / "results/report.html").read_text()
    where = dict(re.findall(r"data-where='([\w.]+)'>([^<]*)<", html))
    for stage, rule in [
        ("train", "train"),
        ("evaluate", "evaluate"),
        ("export", "export"),
        *((f"infer_cpp_{split}.{k}", "infer_cpp") for split in ("query", "gallery") for k in range(SHARDS)),
        ("build_infer", "build_infer"),
    ]:
        m = re.fullmatch(r"SLURM job (\d+) on \S+", where.get(stage, ""))
        assert m and m.group(1) in jobs[rule], (stage, where.get(stage))
    # the scheduler's own job logs are kept by the profile
    for rule, ids in jobs.items():
        for jobid in ids:
            assert list((on_slurm / ".snakemake" / "slurm_logs").glob(f"rule_{rule}/**/{jobid}.log")), (rule, jobid)

    # a second run through the profile submits nothing
    again = run_snakemake(on_slurm, "results/report.html", "--profile", "profiles/slurm", *FAST_POLL, "--configfile", "run.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr and not _submitted(again.stdout + again.stderr)

    # the same configuration run locally gives the same numbers and the same report figures
    m_slurm = json.loads((on_slurm / "results/eval/metrics.json").read_text())
    m_local = json.loads((local / "results/eval/metrics.json").read_text())
    for variant in ["global", "global_local", "global_rerank", "global_local_rerank"]:
        assert m_slurm[variant]["mAP"] == pytest.approx(m_local[variant]["mAP"], abs=1e-6), variant
        assert m_slurm[variant]["cmc"] == pytest.approx(m_local[variant]["cmc"], abs=1e-6), variant
    shown_slurm = report_numbers((on_slurm / "results/report.html").read_text())
    shown_local = report_numbers((local / "results/report.html").read_text())
    headline = {k: v for k, v in shown_local.items() if k.split(".")[0] in m_local}
    assert headline and {k: shown_slurm.get(k) for k in headline} == headline


def test_two_rank_msrun_inside_a_slurm_job(slurm, tmp_path):
    """train.device_num 2 on CPU: the train job holds one node and msrun starts both ranks in it."""
    cfg = json.loads(json.dumps(TINY))
    cfg["train"].update(device_num=2, epochs=1, master_port=8200 + os.getpid() % 500)
    d = _workdir(tmp_path, "msrun", cfg)
    proc = run_snakemake(d, "results/train/model.ckpt", "--profile", "profiles/slurm", *FAST_POLL, "--configfile", "run.yaml", timeout=3600)
    jobs = _submitted(proc.stdout + proc.stderr)
    assert set(jobs) == {"prepare_dataset", "train"}
    jobid = jobs["train"][0]
    assert _job_state(jobid) == "COMPLETED"
    train_log = (d / "results/logs/train.log").read_text()
    assert f"running in SLURM job {jobid} on " in train_log and "--worker_num=2" in train_log
    for rank in (0, 1):
        assert (d / f"results/train/rank_{rank}_final.ckpt").is_file()
        assert (d / f"results/train/msrun_logs/worker_{rank}.log").is_file()
    assert json.loads((d / "results/train/train_summary.json").read_text())["epochs"] == 1
