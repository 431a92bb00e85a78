"""Serving the trained model: export to MindIR/ONNX/AIR (export), INT8 quantisation to OpenVINO IR
(quantize), and the C++ program's inputs, run and outputs (cpp_program)."""

LAYER = 3  # docs/architecture.md §2: imports go to this layer and the ones below
