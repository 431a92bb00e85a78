"""Files exchanged with the C++ program (docs/architecture.md §3): preprocessed inputs and its raw outputs.

Two layouts (``infer.io``): ``packed`` (default) is one uint8 [N, H, W, 3] file per split in, one
float32 file per model output out; ``files`` is the model zoo's one float32 ``{row:06d}.bin`` per
image in and ``{row:06d}_{0,1}.bin`` out. Both hold the tensors MindSpore's eval pipeline produces.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data.loader import eval_dataset
from ..data.manifests import read_manifest
from ..features.files import save_features
from ..foundation.cpu_runtime import program_env
from ..foundation.errors import PipelineError
from ..foundation.io_utils import atomic_directory, atomic_path
from .program_settings import ProgramSettings

log = logging.getLogger(__name__)


def _batches(df, height, width, workers, normalise, desc):
    data = eval_dataset(df, height, width, batch_size=64, workers=workers, normalise=normalise)
    it = data.create_tuple_iterator(num_epochs=1, output_numpy=True)
    for images, _ in tqdm(it, total=data.get_dataset_size(), desc=desc, mininterval=5):
        yield images


def preprocess(manifest_csv, out, height: int, width: int, workers: int, layout: str) -> int:
    """The C++ program's inputs for every manifest row, in manifest order (docs/architecture.md §3).

    ``packed``: one file ``out`` of uint8 [N, H, W, 3], the resized pixels before normalisation
    (the program normalises), 96 KiB per image at 256x128. ``files``: a folder ``out`` with one
    float32 [3, H, W] ``{row:06d}.bin`` per image, normalised (384 KiB each). Written atomically."""
    df = read_manifest(manifest_csv)
    desc = f"preprocess {Path(manifest_csv).stem}"
    n = 0
    if layout == "packed":
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            for images in _batches(df, height, width, workers, False, desc):
                fh.write(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
                n += len(images)
    elif layout == "files":
        with atomic_directory(out) as tmp:
            for images in _batches(df, height, width, workers, True, desc):
                for img in images:
                    np.ascontiguousarray(img, dtype=np.float32).tofile(tmp / f"{n:06d}.bin")
                    n += 1
    else:
        raise ValueError(f"infer.io: expected 'packed' or 'files', got {layout!r}")
    if n != len(df):
        raise PipelineError(f"{manifest_csv}: wrote {n} inputs for {len(df)} manifest rows")
    return n


def _read_outputs(output_dir: Path, n_rows: int, paths) -> tuple[np.ndarray, np.ndarray]:
    """(global [N, C], stripes [N, C, S]) from either output layout of the C++ program."""
    packed = [output_dir / f"output_{k}.f32" for k in (0, 1)]
    if packed[0].is_file() or packed[1].is_file():
        g, l = (np.fromfile(p, dtype=np.float32) if p.is_file() else None for p in packed)
        if g is None or l is None or g.size % n_rows or l.size % n_rows:
            raise PipelineError(f"{output_dir}: output_0.f32 / output_1.f32 missing or not holding {n_rows} rows")
        g = g.reshape(n_rows, -1)
        if l.size % (n_rows * g.shape[1]):
            raise PipelineError(f"{output_dir}: output_1.f32 holds {l.size} values, not {n_rows} rows of stripes of {g.shape[1]} channels")
        return g, l.reshape(n_rows, g.shape[1], -1)
    glob_, loc = [], []
    for i in range(n_rows):
        g_path, l_path = output_dir / f"{i:06d}_0.bin", output_dir / f"{i:06d}_1.bin"
        if not g_path.is_file() or not l_path.is_file():
            raise PipelineError(f"{output_dir}: missing C++ output for row {i} ({paths[i]}); expected {g_path.name} and {l_path.name}")
        g = np.fromfile(g_path, dtype=np.float32)
        l = np.fromfile(l_path, dtype=np.float32)
        if l.size % g.size:
            raise PipelineError(f"{l_path}: {l.size} values are not a multiple of the global feature size {g.size}")
        glob_.append(g)
        loc.append(l.reshape(g.size, -1))
    return np.stack(glob_), np.stack(loc)


def collect_cpp_outputs(manifest_csv, output_dir, out_npz, model=None) -> dict:
    """The C++ outputs of one split (packed or per-image files) -> a feature file; ``model`` (the file
    the program ran) is named when an output is NaN or inf, and nothing is written then."""
    df = read_manifest(manifest_csv)
    g, l = _read_outputs(Path(output_dir), len(df), df.path)
    save_features(out_npz, g, l.transpose(0, 2, 1), df.pid, df.camid, df.path, model=f"{model or 'the C++ program'}, outputs in {output_dir}")
    return {"rows": len(df), "global_dim": int(g.shape[1]), "stripes": int(l.shape[2])}


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512_BF16 or AMX-BF16), as OpenVINO needs for bf16."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set(cpuinfo.split())
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def run_cpp_program(exe, model, inputs, output_dir, settings: ProgramSettings, threads: int) -> None:
    """Run the C++ program over ``inputs`` (a packed file or a folder of .bin files) with ``settings``; its
    outputs land in a temporary folder that replaces ``output_dir`` only when the program succeeded, so a
    killed run leaves nothing a later step reads. The program's own output (with its images/s line) goes
    to this stage's log. It runs with the CPU's own ISA (``cpu_runtime.program_env``)."""
    if settings.precision == "bf16" and not cpu_has_bf16():
        raise PipelineError(
            "infer.precision bf16: this CPU has no bfloat16 instructions (avx512_bf16 or amx_bf16 in /proc/cpuinfo); use fp32 or int8"
        )
    with atomic_directory(output_dir) as tmp:
        source = ["--input", str(inputs)] if Path(inputs).is_file() else ["--input_dir", str(inputs)]
        cmd = [str(exe), "--model", str(model), *source, "--output_dir", str(tmp), *settings.arguments(threads)]
        env = program_env()
        log.info("running %s (ONEDNN_MAX_CPU_ISA %s)", " ".join(cmd), env.get("ONEDNN_MAX_CPU_ISA", "unset: the CPU's own"))
        sys.stderr.flush()
        proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.STDOUT, env=env)
        if proc.returncode != 0:
            raise PipelineError(f"{exe} exited with status {proc.returncode} on {inputs}; its output is in this stage's log")
