"""The Ascend backend of ascend310_infer compiles and links against the MindSpore C++ API
(headers and library of the mindspore-lite wheel); it cannot run without Ascend hardware."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # pip download + CMake build


def test_ascend_backend_compiles_and_links(tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cache = Path(os.environ.get("ALIGNED_MSLITE_CACHE", Path.home() / ".cache" / "alignedreid" / "mslite"))
    build = tmp_path / "build-ascend"
    proc = subprocess.run(
        ["bash", str(REPO / "ascend310_infer/check_ascend_build.sh"), str(cache), str(build)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exe = build / "aligned_infer"
    assert exe.is_file()
    symbols = subprocess.run(["nm", "-DC", str(exe)], capture_output=True, text=True).stdout
    assert "mindspore::Model::Build" in symbols and "mindspore::Model::Predict" in symbols
