"""Training: the typed job (job), the loop and its parts (loop, step, checkpoints, steplog,
watchdog), the launchers (launch: in-process, msrun, rank table; slurm_node; worker), and the
training-only pieces (losses, sampler, lr_schedule, augment).

This module imports nothing heavy: the Snakefile reads TRAINING_CODE at parse time.
"""

# Modules whose code defines what a training run computes, relative to src/alignedreid: part of the
# run's fingerprint (a change discards epoch checkpoints) and declared as inputs of rule train
# (a change re-runs it).
TRAINING_CODE = (
    "model.py",
    "checkpoint.py",
    "data/loader.py",
    "training/loop.py",
    "training/step.py",
    "training/checkpoints.py",
    "training/steplog.py",
    "training/losses.py",
    "training/augment.py",
    "training/sampler.py",
    "training/lr_schedule.py",
    "training/job.py",
    "training/worker.py",
)
