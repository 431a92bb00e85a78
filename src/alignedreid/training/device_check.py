"""Device check: before any heavy stage of a GPU or Ascend run, make MindSpore compute on the
target in a child process and, when it cannot, fail with one message naming what MindSpore needs
for that target and what this host has (driver, CUDA/cuDNN libraries, GPU, CANN).

A child process because a failed device start can leave MindSpore's runtime unusable, and a
broken driver can hang: the probe runs under a time limit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..foundation.errors import DeviceError
from ..foundation.io_utils import write_json

# What the MindSpore 2.10 wheel needs per device target (its installation guide; stated by target,
# so the message can be compared line by line with what was found).
NEEDS = {
    "GPU": (
        "MindSpore 2.10's GPU backend is built for CUDA 11.1 or 11.6 and cuDNN 8: it loads libcudart.so.11.0, "
        "cuBLAS/cuFFT/cuRAND/cuSOLVER/cuSPARSE of CUDA 11 and libcudnn.so.8 (on LD_LIBRARY_PATH or in ldconfig), "
        "needs an NVIDIA driver that runs CUDA 11 (>= 450.80.02, CUDA's minor-version compatibility), and ships kernels "
        "up to Ampere (compute capability 8.x; Hopper, sm_90, is not among them)"
    ),
    "Ascend": (
        "MindSpore 2.10's Ascend backend needs the Ascend driver and firmware and the CANN toolkit of the version "
        "MindSpore 2.10 lists, with CANN's set_env.sh sourced (ASCEND_HOME_PATH, ASCEND_OPP_PATH, LD_LIBRARY_PATH), "
        "and the devices visible to npu-smi"
    ),
}

# The probe: select the device, run one operation, read the result back.
PROBE = """
import json, sys
import mindspore as ms
import numpy as np
target, device_id = sys.argv[1], int(sys.argv[2])
ms.set_device(target, device_id)
x = ms.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
y = (ms.ops.matmul(x, x.T)).asnumpy()
ok = bool(np.allclose(y, np.arange(6, dtype=np.float32).reshape(2, 3) @ np.arange(6, dtype=np.float32).reshape(3, 2)))
print("PROBE " + json.dumps({"ok": ok, "mindspore": ms.__version__}))
"""


def _run(cmd: list[str], timeout: float = 20) -> str | None:
    """stdout of ``cmd``, or None when it is absent or fails."""
    if not shutil.which(cmd[0]):
        return None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def shared_libraries(patterns: tuple[str, ...], env=None) -> list[str]:
    """Names of shared libraries matching ``patterns`` (regexes) in ldconfig's cache and LD_LIBRARY_PATH."""
    env = os.environ if env is None else env
    names = set()
    cache = _run(["ldconfig", "-p"]) or _run(["/sbin/ldconfig", "-p"]) or ""
    names |= {ln.split()[0] for ln in cache.splitlines()[1:] if ln.strip()}
    for folder in filter(None, env.get("LD_LIBRARY_PATH", "").split(os.pathsep)):
        p = Path(folder)
        if p.is_dir():
            names |= {f.name for f in p.iterdir() if ".so" in f.name}
    return sorted(n for n in names if any(re.match(pat, n) for pat in patterns))


def found_on_host(target: str, env=None) -> dict:
    """What this host offers for ``target``: drivers, devices, libraries, toolkit variables."""
    env = os.environ if env is None else env
    if target == "GPU":
        smi = _run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"])
        return {
            "gpus (nvidia-smi)": smi.splitlines() if smi else "nvidia-smi not found or failed",
            "CUDA runtime": shared_libraries((r"libcudart\.so",), env) or "no libcudart.so",
            "cuDNN": shared_libraries((r"libcudnn\.so",), env) or "no libcudnn.so",
            "cuBLAS": shared_libraries((r"libcublas\.so",), env) or "no libcublas.so",
            "CUDA_HOME": env.get("CUDA_HOME", "unset"),
        }
    if target == "Ascend":
        version = Path("/usr/local/Ascend/driver/version.info")
        return {
            "npu-smi": "found" if shutil.which("npu-smi") else "not found",
            "driver": version.read_text().strip().splitlines()[0] if version.is_file() else f"{version} not found",
            "ASCEND_HOME_PATH": env.get("ASCEND_HOME_PATH", "unset"),
            "ASCEND_OPP_PATH": env.get("ASCEND_OPP_PATH", "unset"),
        }
    return {}


def probe(target: str, device_id: int = 0, timeout: float = 300) -> tuple[bool, str]:
    """(whether MindSpore computed correctly on ``target``, its last words) from a child process."""
    try:
        proc = subprocess.run([sys.executable, "-c", PROBE, target, str(device_id)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"no answer from the device within {timeout:.0f} s"
    for line in proc.stdout.splitlines():
        if line.startswith("PROBE "):
            result = json.loads(line[6:])
            return result["ok"], "computed on the device" if result["ok"] else "the device computed a wrong result"
    return False, mindspore_error(proc.stderr)


def mindspore_error(stderr: str) -> str:
    """The first line of the exception MindSpore raised (not its C++ call stack or warnings)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if re.match(r"^\w+(Error|Exception): ", ln):
            return ln[:600]
    errors = [ln for ln in lines if "ERROR" in ln]
    return (errors or lines or ["MindSpore exited without a message"])[-1][:600]


def describe(found: dict) -> str:
    return "; ".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in found.items())


def check_device(target: str, device_id: int, out_json, env=None) -> dict:
    """Write ``out_json`` ({target, ok, found, ...}) when MindSpore computes on ``target``; else raise
    DeviceError with what it needs and what was found (and write nothing)."""
    found = found_on_host(target, env)
    if target == "CPU":
        result = {"target": "CPU", "ok": True, "detail": "no check needed", "found": {}}
    else:
        ok, detail = probe(target, device_id)
        result = {"target": target, "device_id": device_id, "ok": ok, "detail": detail, "found": found}
        if not ok:
            raise DeviceError(
                f"train.device_target {target}: MindSpore cannot compute on {target} device {device_id} ({detail}). "
                f"Needed: {NEEDS[target]}. Found on this host: {describe(found)}. "
                "Fix the host, or set train.device_target: CPU"
            )
    write_json(out_json, result)
    return result
