"""Entry of one training process: ``python -m alignedreid.training.worker --job job.json``, or this
file run as a script (msrun takes a script path). Launchers start it once per rank; the in-process
launcher calls :func:`run_worker` directly."""

from __future__ import annotations

import argparse
import logging
import sys

from alignedreid.foundation.errors import PipelineError  # the package import applies the CPU runtime defaults first
from alignedreid.training.job import TrainJob

log = logging.getLogger("alignedreid.training.worker")


def run_worker(job: TrainJob) -> dict:
    from alignedreid.training.loop import train

    log.info("inputs found: %s", ", ".join(job.check_inputs()))
    return train(job)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Run one AlignedReID++ training process from a job file")
    ap.add_argument("--job", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_worker(TrainJob.load(args.job))
    except PipelineError as e:  # a message for the user, not a traceback
        log.error("%s", e)
        sys.exit(1)


if __name__ == "__main__":
    main()
