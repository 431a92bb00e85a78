"""Files exchanged with the C++ program (docs/architecture.md §3): preprocessed inputs and its raw outputs.

Two layouts (``infer.io``): ``packed`` (default) is one uint8 [N, H, W, 3] file per split in, one
float32 file per model output out; ``files`` is the model zoo's one float32 ``{row:06d}.bin`` per
image in and ``{row:06d}_{0,1}.bin`` out. Both hold the tensors MindSpore's eval pipeline produces.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data.manifests import read_manifest
from ..features.files import save_features
from ..foundation.cpu_runtime import program_env
from ..foundation.errors import PipelineError
from ..foundation.io_utils import atomic_directory, atomic_path
from .program_settings import ProgramSettings
from .shards import shard_rows

log = logging.getLogger(__name__)


def _batches(df, height, width, workers, normalise, desc):
    # imported here: MindSpore's dataset pipeline takes a second or more to import, and the jobs that
    # only run the program or gather its outputs (infer_cpp, features_cpp: one per shard) never use it
    from ..data.loader import eval_dataset

    data = eval_dataset(df, height, width, batch_size=64, workers=workers, normalise=normalise)
    it = data.create_tuple_iterator(num_epochs=1, output_numpy=True)
    for images, _ in tqdm(it, total=data.get_dataset_size(), desc=desc, mininterval=5):
        yield images


def preprocess(manifest_csv, out, height: int, width: int, workers: int, layout: str, rows: range | None = None) -> int:
    """The C++ program's inputs for every manifest row (or the rows ``rows`` of one shard, see
    ``shards.shard_rows``), in manifest order (docs/architecture.md §3).

    ``packed``: one file ``out`` of uint8 [N, H, W, 3], the resized pixels before normalisation
    (the program normalises), 96 KiB per image at 256x128. ``files``: a folder ``out`` with one
    float32 [3, H, W] ``{row:06d}.bin`` per image (numbered from 0 in each shard), normalised (384 KiB
    each). Written atomically; an empty shard is an empty file or folder."""
    if layout not in ("packed", "files"):
        raise ValueError(f"infer.io: expected 'packed' or 'files', got {layout!r}")
    df = read_manifest(manifest_csv)
    if rows is not None:
        df = df.iloc[rows.start : rows.stop].reset_index(drop=True)
    desc = f"preprocess {Path(manifest_csv).stem}" + (f" rows {rows.start}-{rows.stop - 1}" if rows else "")
    n = 0
    if df.empty:
        with atomic_directory(out) if layout == "files" else atomic_path(out) as tmp:
            if layout == "packed":
                Path(tmp).write_bytes(b"")
    elif layout == "packed":
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
    if n != len(df):
        raise PipelineError(f"{manifest_csv}: wrote {n} inputs for {len(df)} manifest rows")
    return n


def _read_outputs(output_dir: Path, n_rows: int, paths) -> tuple[np.ndarray, np.ndarray]:
    """(global [N, C], stripes [N, C, S]) from either output layout of the C++ program."""
    ran = output_dir / RAN_ON
    if ran.is_file():  # how many images the program read (run_cpp_program): a shard cut elsewhere is refused
        images = json.loads(ran.read_text())["images"]
        if images != n_rows:
            raise PipelineError(
                f"{output_dir}: the C++ program ran on {images} images, where {n_rows} manifest rows are expected "
                "(infer.shards or infer.batch_size changed since it ran?)"
            )
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


def collect_cpp_outputs(manifest_csv, output_dirs, out_npz, model=None, batch: int | None = None) -> dict:
    """The C++ outputs of one split (packed or per-image files) -> a feature file. ``output_dirs``: the
    output folder of each shard, in shard order (one folder: one shard); the rows of each are those
    ``shards.shard_rows`` gives for the program's ``batch`` (needed with several shards). ``model`` (the file the program ran) is named
    when an output is NaN or inf, and nothing is written then."""
    df = read_manifest(manifest_csv)
    dirs = [Path(output_dirs)] if isinstance(output_dirs, (str, Path)) else [Path(d) for d in output_dirs]
    if len(dirs) > 1 and batch is None:
        raise ValueError("collect_cpp_outputs: the outputs of several shards need the program's batch")
    shards = shard_rows(len(df), len(dirs), batch or 1)
    parts = [_read_outputs(d, len(rows), df.path[rows.start : rows.stop].tolist()) for d, rows in zip(dirs, shards) if rows]
    g, l = parts[0] if len(parts) == 1 else (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    output_dir = dirs[0] if len(dirs) == 1 else f"{dirs[0]} .. {dirs[-1]} ({len(dirs)} shards)"
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


RAN_ON = "inputs.json"  # written beside the outputs: how many images the program read


def _count_inputs(inputs: Path, settings: ProgramSettings) -> int:
    if inputs.is_file():
        return inputs.stat().st_size // (settings.height * settings.width * 3)
    return sum(1 for _ in inputs.glob("*.bin"))


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
        images = _count_inputs(Path(inputs), settings)
        (tmp / RAN_ON).write_text(json.dumps({"images": images, "input": str(inputs)}))
        if not images:  # an empty shard: nothing to run
            log.info("%s holds no image: nothing to run", inputs)
            return
        source = ["--input", str(inputs)] if Path(inputs).is_file() else ["--input_dir", str(inputs)]
        cmd = [str(exe), "--model", str(model), *source, "--output_dir", str(tmp), *settings.arguments(threads)]
        env = program_env()
        log.info("running %s (ONEDNN_MAX_CPU_ISA %s)", " ".join(cmd), env.get("ONEDNN_MAX_CPU_ISA", "unset: the CPU's own"))
        sys.stderr.flush()
        proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.STDOUT, env=env)
        if proc.returncode != 0:
            raise PipelineError(f"{exe} exited with status {proc.returncode} on {inputs}; its output is in this stage's log")
