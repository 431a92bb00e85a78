"""Logging for pipeline stages: everything (logging, tqdm bars, warnings) goes to the rule's log
file; a failure is also echoed to the console with the file or key it concerns."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from .errors import PipelineError

RUN_LOCATION = re.compile(r"running in SLURM job (\d+) on (\S+)")  # what run_location writes
OUTPUT_SIZE = re.compile(r"outputs: (\d+) bytes in (\d+) files")  # what output_size_line writes


def peak_rss_gib() -> float:
    """This process's peak resident memory in GiB: VmHWM on Linux (this program's own memory; ru_maxrss
    also counts the parent's at the fork that started it), else ru_maxrss."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**30 if sys.platform == "darwin" else 2**20)


def disk_usage(paths) -> tuple[int, int]:
    """(bytes, files) under the given files and folders (missing ones count nothing)."""
    total = count = 0
    for p in map(Path, paths):
        files = [p] if p.is_file() else (f for f in p.rglob("*") if f.is_file()) if p.is_dir() else []
        for f in files:
            total += f.stat().st_size
            count += 1
    return total, count


def output_size_line(paths) -> str:
    return "outputs: {} bytes in {} files".format(*disk_usage(paths))


def parse_output_size(text: str) -> tuple[int, int] | None:
    """(bytes, files) of the last output_size_line in ``text``, else None."""
    found = OUTPUT_SIZE.findall(text)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def run_location(env=None) -> str:
    """One line naming the SLURM job this stage runs in (empty outside SLURM), for the logs."""
    env = os.environ if env is None else env
    if "SLURM_JOB_ID" not in env:
        return ""
    return (
        f"running in SLURM job {env['SLURM_JOB_ID']} on {env.get('SLURMD_NODENAME', socket.gethostname())}"
        f" (partition {env.get('SLURM_JOB_PARTITION', '?')}, cpus {env.get('SLURM_CPUS_PER_TASK', '?')},"
        f" nodes {env.get('SLURM_JOB_NUM_NODES', '1')})"
    )


def parse_run_location(text: str) -> tuple[str, str] | None:
    """(job id, host) of the first run_location line in ``text``, else None."""
    m = RUN_LOCATION.search(text)
    return (m.group(1), m.group(2)) if m else None


@contextlib.contextmanager
def stage_logging(log_path: str | None, name: str, outputs=None) -> Iterator[logging.Logger]:
    """Send everything to the stage's log; on success log the size of ``outputs`` (the report shows it)."""
    console = sys.__stderr__
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "w", buffering=1)
    else:
        stream = sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = stream
    logger = logging.getLogger(f"alignedreid.stage.{name}")
    where = run_location()
    if where:
        logger.info("%s", where)
    try:
        yield logger
        if outputs is not None:
            logger.info("%s", output_size_line(list(outputs)))
    except PipelineError as e:
        logger.error("%s", e)
        print(f"[{name}] error: {e}", file=console)
        raise SystemExit(1) from None
    except BaseException:
        logger.error("unexpected failure:\n%s", traceback.format_exc())
        print(f"[{name}] failed; see {log_path}", file=console)
        raise
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        root.removeHandler(handler)
        if stream is not sys.__stderr__ and log_path:
            stream.close()


def exit_without_teardown() -> None:
    """End a stage's process with status 0 now, once ``stage_logging`` has closed its log and every output
    is written and renamed into place: skip the interpreter's teardown. After MindSpore is imported that
    teardown (finalising its modules and extension libraries) costs about 0.4 s, which every shard job of
    ``preprocess``, ``features_python`` (on the CPU) and ``search_features`` would pay (docs/architecture.md §1,
    "Shards"). The standard streams are flushed and logging shut down first, so no line is lost."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(0)
