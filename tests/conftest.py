import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def copy_workflow(dst: Path) -> Path:
    """Copy the workflow (Snakefile, config, rules, scripts, package sources, C++ sources) to
    ``dst``, so a real snakemake run there cannot touch the checkout's results/."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ["Snakefile", "config", "profiles", "workflow", "src", "ascend310_infer"]:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", "build", "build-*", "*.egg-info"))
        elif src.exists():
            shutil.copy2(src, dst / name)
    return dst


@pytest.fixture
def repo_copy(tmp_path):
    return copy_workflow(tmp_path / "repo")


# The workflow tests' configuration: the whole DAG in about a minute on 2 cores (ResNet-18 at 64x32,
# a few synthetic identities, two short epochs). Tests change it through tiny_config(**overrides).
TINY = {
    "dataset": {
        "source": "synthetic",
        "synthetic": {"seed": 5, "train_ids": 8, "test_ids": 6, "images_per_id": 6, "cameras": 3, "queries_per_id": 2, "distractors": 4, "junk": 2},
    },
    "model": {"depth": 18, "height": 64, "width": 32},
    "train": {"epochs": 2, "max_steps": 4, "batch_size": 16, "num_instances": 4, "lr_max": 0.01, "warmup_epochs": 1, "quick_eval": True},
    "export": {"batch_size": 1},
    "infer": {"batch_size": 4},
    "evaluation": {"max_rank": 10, "rerank": {"k1": 6, "k2": 3}, "parity_sample": 5},
}


def tiny_config(**sections) -> dict:
    """TINY with ``sections`` merged in key by key (``tiny_config(train={"epochs": 1})`` keeps the other
    train keys); a fresh copy each call."""
    return merge_config(copy.deepcopy(TINY), copy.deepcopy(sections))


def run_pipeline(root: Path, config: dict, target: str = "results/report.html", name: str = "run.yaml", **kw) -> Path:
    """A copy of the workflow under ``root``/repo with ``config`` written to ``name``, run to ``target``
    with real snakemake (``kw``: run_snakemake's options); returns the copy."""
    dst = copy_workflow(Path(root) / "repo")
    (dst / name).write_text(yaml.safe_dump(config))
    run_snakemake(dst, target, "--configfile", name, **kw)
    return dst


VENV = Path(sys.prefix)  # the environment the tests run in, linked as a copy's .venv
# a PATH with the system's tools (cmake, the compiler, bash) and without the virtual environment
BARE_PATH = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != (VENV / "bin").resolve())
# the session's run, started as a user types it: the README's .venv/bin/snakemake, nothing activated,
# numbers given on the command line (the same values as TINY's, so its results are TINY's)
USER_COMMAND = ".venv/bin/snakemake --cores 2 results/report.html --configfile tiny.yaml --config train='{epochs: 2, max_steps: 4}'"


def user_repo(root: Path) -> Path:
    """A copy of the workflow under ``root``/repo with the test environment linked as its .venv."""
    d = copy_workflow(Path(root) / "repo")
    (d / ".venv").symlink_to(VENV)
    return d


def shell(workdir: Path, command: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    """``command`` in bash exactly as typed, with the venv nowhere on PATH and no VIRTUAL_ENV."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = BARE_PATH
    return subprocess.run(["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """The whole DAG on TINY (``tiny.yaml`` in the copy), finished once per test session and started as
    a user types it (USER_COMMAND): the workflow tests that read a finished run share it, the README
    command test checks how it ran, and the SLURM test compares its own run of TINY with it. Tests that
    edit it restore what they changed."""
    d = user_repo(tmp_path_factory.mktemp("e2e"))
    (d / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    proc = shell(d, USER_COMMAND)
    if proc.returncode != 0:
        raise AssertionError(f"{USER_COMMAND} failed ({proc.returncode}):\n{proc.stdout[-5000:]}\n{proc.stderr[-8000:]}")
    (d / "user_command.out").write_text(proc.stdout + proc.stderr)
    return d


def merge_config(dst: dict, src: dict) -> dict:
    """Merge ``src`` into ``dst`` key by key, recursing into sections (as a second config file does)."""
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge_config(dst[k], v)
        else:
            dst[k] = v
    return dst


def dataset_section(dataset: dict) -> dict:
    """The ``dataset`` config section as the pipeline sees it: validated, defaults filled."""
    from alignedreid.foundation.config import resolve

    return resolve({"dataset": dataset})["dataset"]


def eval_section(k1: int = 20, k2: int = 6, lam: float = 0.3, max_rank: int = 10, **keys) -> dict:
    """The validated ``evaluation`` config section (schema defaults) with these re-ranking
    parameters, CMC length and other keys, as evaluate_features takes it."""
    from alignedreid.foundation.config import section_defaults

    cfg = section_defaults("evaluation")
    cfg["rerank"].update({"k1": k1, "k2": k2, "lambda": lam})
    return {**cfg, "max_rank": max_rank, **keys}


def report_numbers(html: str) -> dict[str, str]:
    """Every number the report marks with data-metric, by name ('global.mAP', 'parity', ...)."""
    return dict(re.findall(r"data-metric='([\w.]+)'>([\d.e+-]+)<", html))


def start_snakemake(workdir: Path, *args: str, own_package: bool = False) -> subprocess.Popen:
    """snakemake in ``workdir`` with the project's environment, started in the background (its output
    collected by :func:`finish_snakemake`); ``own_package``: the jobs import the copy's src/alignedreid
    (PYTHONPATH) instead of the checkout's installed one, so that edits of the copy's code are what runs.
    Its output goes to temporary files, not pipes: a run left alone for minutes never blocks on a full pipe."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    if own_package:
        env["PYTHONPATH"] = str(Path(workdir) / "src")
    cmd = [str(BIN / "snakemake"), "--cores", "2", *args]
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=err, text=True)
    proc.output_files = (out, err)
    return proc


def finish_snakemake(proc: subprocess.Popen, check: bool = True, timeout: int = 1800) -> subprocess.CompletedProcess:
    """Wait for a snakemake started by :func:`start_snakemake` (killed past ``timeout`` seconds); with
    ``check`` a failure raises with the end of its output."""
    try:
        proc.wait(timeout=timeout)
        late = False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        late = True
    texts = []
    for f in proc.output_files:
        f.seek(0)
        texts.append(f.read())
        f.close()
    out, err = texts
    if late:
        raise AssertionError(f"snakemake {' '.join(proc.args[3:])} ran past {timeout} s:\n{out[-5000:]}\n{err[-8000:]}")
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(proc.args[3:])} failed ({proc.returncode}):\n{out[-5000:]}\n{err[-8000:]}")
    return done


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 1800, own_package: bool = False) -> subprocess.CompletedProcess:
    """snakemake in ``workdir`` with the project's environment, to the end (see :func:`start_snakemake`)."""
    return finish_snakemake(start_snakemake(workdir, *args, own_package=own_package), check, timeout)


def planned_resources(workdir: Path, rule: str, target: str, config: dict) -> dict:
    """Resources Snakemake gives the first job of ``rule`` in a dry run of ``target`` with ``config``
    (written to ``workdir``/c.yaml), as strings."""
    import yaml

    (workdir / "c.yaml").write_text(yaml.safe_dump(config))
    out = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--cores", "2", target, "--configfile", "c.yaml"], cwd=workdir, capture_output=True, text=True, check=True
    ).stdout
    block = out.split(f"rule {rule}:")[1].split("\n\n")[0]
    line = re.search(r"^\s+resources: (.*)$", block, re.M).group(1)
    return dict(kv.split("=", 1) for kv in line.split(", "))


# ``make test`` runs the suite on two pytest-xdist workers (--dist loadscope): the scheduler below keeps
# each module on one worker (its module-scoped runs are made once), and the modules that read the
# session's shared run (the ``pipeline`` fixture) or start the throwaway SLURM share one worker, so
# that run is made once and one SLURM is started. The heaviest groups go first, so that neither worker
# is left with a long run at the end (times: docs/architecture.md, "The test suite").
SHARED_RUN_MODULES = ("tests/cluster/test_slurm_profile.py", "tests/workflow/test_pipeline_e2e.py", "tests/workflow/test_user_commands.py")
HEAVIEST_FIRST = (
    "pipeline",
    "tests/workflow/test_rehearsal_scaled.py",
    "tests/workflow/test_int8.py",
    "tests/workflow/test_cross_domain_flip.py",
    "tests/workflow/test_interrupted_run.py",
    "tests/workflow/test_training_runs.py",
)


def worker_group(nodeid: str) -> str:
    """The worker group of a test: ``pipeline`` for the shared-run modules, else its module's path."""
    path = nodeid.split("::")[0]
    return "pipeline" if path in SHARED_RUN_MODULES else path


def pytest_collection_modifyitems(config, items):
    """The heaviest groups first (HEAVIEST_FIRST), every module's tests kept together and in order."""
    rank = {g: i for i, g in enumerate(HEAVIEST_FIRST)}
    order = {id(item): n for n, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(worker_group(item.nodeid), len(rank)), order[id(item)]))


def pytest_xdist_make_scheduler(config, log):
    """--dist loadscope with the groups of :func:`worker_group` as its scopes."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return worker_group(nodeid)

    return GroupScheduling(config, log)
