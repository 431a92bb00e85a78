"""The outputs of a whole pipeline run, written by hand at toy size, for the report and evaluate-stage tests."""

import numpy as np
import pandas as pd
from PIL import Image

from alignedreid.evaluation.run import run_evaluation
from alignedreid.features.files import save_features
from alignedreid.foundation.config import resolve
from alignedreid.foundation.io_utils import write_json


def write_stage_outputs(tmp_path, parity_diff=2e-6):
    """Hand-made outputs of every stage the report reads, in ``tmp_path``: a 6-image gallery, 2 queries,
    the evaluate stage run on their features (metrics.json, per_query.csv), parity, benchmarks and logs.
    Returns (report inputs, benchmark files, stage logs)."""
    rng = np.random.default_rng(0)
    imgs = []
    for i in range(6):
        p = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(p)
        imgs.append(str(p))
    pd.DataFrame({"path": imgs, "pid": [1, 1, 2, 2, -1, 0], "camid": [0, 1, 0, 1, 2, 2]}).to_csv(tmp_path / "gallery.csv", index=False)
    q = pd.DataFrame({"path": imgs[:2], "pid": [1, 2], "camid": [2, 2]})
    gl = rng.standard_normal((6, 8)).astype(np.float32)
    loc = rng.standard_normal((6, 2, 8)).astype(np.float32)
    save_features(tmp_path / "q.npz", gl[:2], loc[:2], q.pid, q.camid, q.path)
    save_features(tmp_path / "g.npz", gl, loc, [1, 1, 2, 2, -1, 0], [0, 1, 0, 1, 2, 2], imgs)
    ev = resolve({"evaluation": {"max_rank": 4, "rerank": {"k1": 3, "k2": 2}}})["evaluation"]
    run_evaluation(tmp_path / "q.npz", tmp_path / "g.npz", tmp_path / "metrics.json", tmp_path / "per_query.csv", ev, threads=1, precision="fp32")
    split = {"images": 6, "ids": 2, "cameras": [0, 1, 2], "distractors": 1, "junk": 1, "corrupt_skipped": []}
    write_json(tmp_path / "summary.json", {"source": "synthetic", "splits": {"train": split, "query": split, "gallery": split}})
    write_json(
        tmp_path / "train_summary.json",
        {
            "num_classes": 2,
            "steps_per_epoch": 3,
            "epochs": 1,
            "max_steps": None,
            "world_size": 1,
            "final_loss": 1.5,
            "median_images_per_s": 40.0,
            "median_step_s": 0.8,
            "device_target": "CPU",
            "execution": "graph",
            "depth": 18,
            "height": 64,
            "width": 32,
        },
    )
    pd.DataFrame(
        [[1, s, s, 0.01, 2.0 - s / 10, 1, 0.5, 0.4, 40.0] for s in (1, 2, 3)],
        columns=["epoch", "step", "global_step", "lr", "loss", "id_loss", "triplet_loss", "local_loss", "images_per_s"],
    ).to_csv(tmp_path / "log.csv", index=False)
    for name in ("model.ckpt", "model.mindir", "model.onnx"):
        (tmp_path / name).write_bytes(b"x" * 100)
    parity = {"global_max_abs_diff": parity_diff, "local_max_abs_diff": 1e-7, "max_abs_diff": parity_diff, "tolerance": 1e-4, "rows_compared": 64}
    parity |= {"global_raw_max_abs_diff": 3e-4, "global_raw_max_rel_diff": 2e-7, "precision": "fp32", "enforced": True}
    parity["onnxruntime"] = {
        "global_max_abs_diff": 1e-6,
        "local_max_abs_diff": 5e-7,
        "max_abs_diff": 1e-6,
        "rows_compared": 64,
        "tolerance": 1e-4,
        "ok": True,
    }
    write_json(tmp_path / "parity.json", parity)
    bench, logs = [], {}
    for stage in ("train", "infer_cpp_query.0", "infer_cpp_gallery.0"):
        (tmp_path / f"{stage}.tsv").write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t812.0\n")
        line = "running in SLURM job 77 on node3 (partition p, cpus 2, nodes 1)" if stage == "train" else "images/s 250.5 (6 images)"
        (tmp_path / f"{stage}.log").write_text(f"2026-01-01 INFO x: {line}\n" if stage == "train" else f"{line}\n")
        bench.append(str(tmp_path / f"{stage}.tsv"))
        logs[stage] = str(tmp_path / f"{stage}.log")
    inputs = {
        "summary": tmp_path / "summary.json",
        "gallery": tmp_path / "gallery.csv",
        "train_summary": tmp_path / "train_summary.json",
        "train_log": tmp_path / "log.csv",
        "model": tmp_path / "model.ckpt",
        "mindir": tmp_path / "model.mindir",
        "onnx": tmp_path / "model.onnx",
        "parity": tmp_path / "parity.json",
        "metrics": tmp_path / "metrics.json",
        "per_query": tmp_path / "per_query.csv",
    }
    return inputs, bench, logs
