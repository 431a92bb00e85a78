"""Training: the typed job (job), the loop and its parts (loop, step, checkpoints, steplog,
watchdog), the launchers (launch: in-process, msrun, rank table; slurm_node; worker), and the
training-only pieces (losses, lr_schedule, augment, quick_eval).

This module imports nothing heavy (code_closure reads files with the standard library).
"""

from ..code_closure import package_closure, relative_names

# The modules a training process runs, relative to src/alignedreid (the training worker's import
# closure): part of the run's fingerprint (a change discards epoch checkpoints).
TRAINING_CODE = relative_names(package_closure("training/worker.py"))
