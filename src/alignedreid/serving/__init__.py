"""Serving the trained model: export to MindIR/ONNX/AIR (export), INT8 quantisation to OpenVINO IR
(quantize), the C++ program's inputs and outputs (cpp_program) and one run of it (cpp_run)."""

LAYER = 3  # docs/architecture.md §2: imports go to this layer and the ones below
