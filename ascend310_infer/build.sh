#!/usr/bin/env bash
# Build aligned_infer.  Usage: ascend310_infer/build.sh [cpu|ascend] [build_dir]
#   cpu:    OpenVINO from the Python environment's openvino wheel ($PYTHON, else the python3 next
#           to this project's .venv, else python3 on PATH)
#   ascend: MindSpore C++ API under $MINDSPORE_PATH
set -euo pipefail
backend=${1:-cpu}
here=$(cd "$(dirname "$0")" && pwd)
build=${2:-$here/build-$backend}
extra=()
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$here/../.venv/bin/python" ]; then PYTHON="$here/../.venv/bin/python"; else PYTHON=python3; fi
fi
if [ "$backend" = cpu ]; then
  ov_dir=$("$PYTHON" -c 'import openvino, os; print(os.path.join(os.path.dirname(openvino.__file__), "cmake"))') || {
    echo "build.sh: $PYTHON has no openvino; set PYTHON to the project's environment (.venv/bin/python)" >&2; exit 1; }
  extra+=("-DOpenVINO_DIR=$ov_dir")
fi
cmake -S "$here" -B "$build" -DINFER_BACKEND="$backend" -DCMAKE_BUILD_TYPE=Release "${extra[@]}"
cmake --build "$build" -j "$(nproc)"
echo "built $build/aligned_infer"
