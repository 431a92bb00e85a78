"""Training: the typed job (job), the loop and its parts (loop, step, checkpoints, steplog,
watchdog), the launchers (launch: in-process, msrun, rank table; slurm_node; worker), and the
training-only pieces (losses, lr_schedule, augment, quick_eval, imported), and the check that
MindSpore computes on the training device (device_check).

This module imports nothing heavy (code_closure reads files with the standard library).
"""

LAYER = 3  # docs/architecture.md §2: imports go to this layer and the ones below

# The code that determines the trained weights, relative to src/alignedreid: the network, loading
# the pretrained backbone, the input pipeline (manifest -> image decoding -> sampler -> augmented batches), the
# losses, the step, optimiser and schedule, the loop, and the CPU runtime defaults (they pick the
# oneDNN kernels). Its meaning (code_closure.file_identity) is part of the training fingerprint and
# the train rule's code identity: an edit here starts a new set of epoch checkpoints. The rest of the
# training worker's import closure runs the training without changing its numbers (launchers, the
# job file, checkpoint files, the step log) and is ORCHESTRATION_CODE; a test keeps the two lists
# covering the closure. docs/architecture.md §2, "What an edit re-runs".
WEIGHT_CODE = (
    "__init__.py",
    "model/checkpoint.py",
    "foundation/cpu_runtime.py",
    "data/images.py",
    "data/loader.py",
    "data/sampler.py",
    "model/network.py",
    "training/augment.py",
    "training/loop.py",
    "training/losses.py",
    "training/lr_schedule.py",
    "training/step.py",
)
ORCHESTRATION_CODE = (
    "training/__init__.py",
    "training/checkpoints.py",
    "training/job.py",
    "training/launch.py",
    "training/slurm_node.py",
    "training/steplog.py",
    "training/worker.py",
)
