"""Features of the query and gallery images: the C++ program's input and output files
(cpp_files), the MindSpore Python reference (python_ref) and their agreement (parity)."""
