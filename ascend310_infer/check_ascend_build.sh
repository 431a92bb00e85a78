#!/usr/bin/env bash
# Compile-and-link check of the Ascend backend without Ascend hardware: fetches the MindSpore C++
# API headers and library shipped in the mindspore-lite 2.0.0 wheel (pip's cache keeps it) and
# builds aligned_infer with INFER_BACKEND=ascend against them.
# Usage: check_ascend_build.sh WORK_DIR [BUILD_DIR]   (WORK_DIR keeps the wheel between runs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:?usage: check_ascend_build.sh WORK_DIR [BUILD_DIR]}
build=${2:-$work/build-ascend}
mkdir -p "$work"
wheel=$(ls "$work"/mindspore_lite-2.0.0-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  "${PYTHON:-python3}" -m pip download --no-deps --only-binary=:all: --python-version 3.7 --platform manylinux1_x86_64 \
      mindspore-lite==2.0.0 -d "$work" >&2
  wheel=$(ls "$work"/mindspore_lite-2.0.0-*.whl | head -1)
fi
rm -rf "$work/sdk"
"${PYTHON:-python3}" - "$wheel" "$work/sdk" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if n.startswith(("mindspore_lite/include/", "mindspore_lite/lib/")):
            z.extract(n, sys.argv[2])
PY
rm -rf "$build"
MINDSPORE_PATH="$work/sdk/mindspore_lite" bash "$here/build.sh" ascend "$build"
