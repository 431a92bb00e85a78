"""Foundation: what every stage stands on and nothing else -- error types, atomic files, stage
logging, the configuration and its schema, shared constants, the CPU runtime defaults, the numba
thread count, folder walks, the checksummed download, and the identity of code (code_closure).
Imports only the standard library, NumPy-free modules and PyYAML/jsonschema: the Snakefile parses
with it."""

LAYER = 1  # docs/architecture.md §2: imports go to this layer and the ones below
