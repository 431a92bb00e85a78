"""Features of the query and gallery images: the feature-file contract (files), the MindSpore
Python reference (python_ref), ONNX Runtime on a sample (onnx_ref) and the agreement of the C++
program with them (parity)."""

LAYER = 3  # docs/architecture.md §2: imports go to this layer and the ones below
