# Helpers shared by the rule files.
import os
import shutil
from importlib import metadata
from pathlib import Path

# standard library only: read at parse time
from alignedreid.foundation.code_closure import code_identity, rule_code_files
from alignedreid.serving.program_settings import ProgramSettings
from alignedreid.serving.shards import shard_ids
from alignedreid.training import WEIGHT_CODE

REPO = Path(workflow.basedir)
PKG = REPO / "src" / "alignedreid"
SPLITS = ["query", "gallery"]


wildcard_constraints:
    split="|".join(SPLITS),  # every {split} of every rule: the evaluated splits
    shard=r"\d+",  # a shard of a split's inference: 0 .. infer.shards - 1


# infer.shards: each split's preprocess and C++ inference run as this many jobs (serving.shards);
# the Python reference features too when evaluate reads them (every image), else one job of a sample
SHARDS = shard_ids(config["infer"]["shards"])
PYTHON_FEATURES_ALL = config["evaluation"]["feature_source"] == "python"
PYTHON_SHARDS = SHARDS if PYTHON_FEATURES_ALL else shard_ids(1)


# manifests of the evaluated dataset: the training dataset's, or evaluation.dataset's (cross-domain)
CROSS_DOMAIN = config["evaluation"]["dataset"] is not None
EVAL_DATA = "results/data/eval" if CROSS_DOMAIN else "results/data"


def script_code(script, *launched, package=True):
    """A rule's code identity, declared as its param ``code``: one hash of the meaning (syntax tree
    without comments, docstrings or formatting) of workflow/scripts/<script> and of the package modules
    it runs -- its import closure and that of each module in ``launched`` (package-relative files the
    stage starts as processes), without the result-neutral ones (code_closure.RESULT_NEUTRAL), read in
    this workflow's own src/alignedreid. A change of meaning re-runs the rule through Snakemake's params
    trigger; the profile profiles/default turns the code trigger (script mtime) off, so a comment or a
    reformat re-runs nothing. ``package=False``: the script alone. docs/architecture.md §2."""
    files = rule_code_files(REPO / "workflow" / "scripts" / script, *launched, package=package, root=PKG)
    return code_identity(files, root=PKG)


def training_code():
    """The train rule's code identity: the modules that determine the weights (training.WEIGHT_CODE), the
    same ones the training fingerprint hashes; launchers, logging and the adapter script do not count."""
    return code_identity([PKG / m for m in WEIGHT_CODE], root=PKG)


def toolchain_identity():
    """What the C++ build depends on besides its sources: the OpenVINO wheel's version, the CMake and
    compiler found (paths; a different toolchain re-runs build_infer)."""
    try:
        openvino = metadata.version("openvino")
    except metadata.PackageNotFoundError:
        openvino = None
    return {"openvino": openvino, "cmake": shutil.which("cmake"), "cxx": os.environ.get("CXX") or shutil.which("c++")}


def infer_input_path():
    """The C++ program's input of shard {shard} of split {split}: one packed file, or a folder of .bin files (infer.io)."""
    return "results/infer/input/{split}.{shard}.u8" if config["infer"]["io"] == "packed" else "results/infer/input/{split}.{shard}"


def shard_spec(shard, shards):
    """Which rows a shard job reads (serving.shards.shard_rows): its index, the shard count, the program's batch."""
    return {"index": int(shard), "shards": len(shards), "batch": PROGRAM.batch}


def shard_param(wildcards):
    """The rows of an inference shard job (infer.shards)."""
    return shard_spec(wildcards.shard, SHARDS)


def infer_input_output():
    """Rule preprocess's output (temporary: removed once infer_cpp has read it)."""
    path = infer_input_path()
    return temp(path) if config["infer"]["io"] == "packed" else temp(directory(path))


def dataset_inputs(section):
    """The dataset archive (.zip, .tar.gz, ...) as an input of its prepare rule (a changed archive re-runs it); folders are not tracked."""
    root = section["root"] if section else None
    if section and section["source"] != "synthetic" and root and str(root).lower().endswith((".zip", ".tar", ".tar.gz", ".tgz")):
        return [root]
    return []


def dataset_params(section):
    """A dataset section as a rule's params, without dataset.workers (the job's threads: changing them
    must not re-run the stage and everything after it) and, unless dataset.root is an archive, without
    dataset.archive (its limits are read only when extracting)."""
    if not section:
        return section
    unread = {"workers"} | (set() if dataset_inputs(section) else {"archive"})
    return {k: v for k, v in section.items() if k not in unread}


def stage_resources(stage):
    """mem_mb and runtime (minutes) of a cluster job, from config section resources.<stage>."""
    r = config["resources"][stage]
    return {"mem_mb": r["mem_mb"], "runtime": r["runtime"]}


def train_cluster_resources():
    """What the train job asks a cluster for: nodes, and the accelerators of train.device_target
    (GPU: SLURM --gpus, one task driving them; Ascend: generic resource npu). Sites that name them
    otherwise override gpu/gres/slurm_extra for rule train in their profile."""
    t = config["train"]
    per_node = -(-t["device_num"] // t["nodes"])
    return {"nodes": t["nodes"], "devices": t["device_num"], **device_resources(per_node)}


# precision of the C++ program; with int8/bf16 the fp32 run of the same model is evaluated beside
PRECISION = config["infer"]["precision"]
COMPARE_FP32 = PRECISION != "fp32" and config["infer"]["compare_fp32"]
# the feature sources evaluate reads (as evaluation stores): evaluation.feature_source, and with
# int8/bf16 C++ features the fp32 C++ features of the same model
SOURCE = config["evaluation"]["feature_source"]
EVALUATED_SOURCES = [SOURCE] + (["cpp_fp32"] if COMPARE_FP32 and SOURCE == "cpp" else [])
# how the C++ program runs the model (infer_cpp, infer_cpp_fp32 at fp32, search_features): one value
PROGRAM = ProgramSettings.from_config(config)
# the model's input size [height, width], for the stages that size images for it
INPUT_SIZE = [config["model"]["height"], config["model"]["width"]]
# the C++ features parity checks against the fp32 Python reference: always float32 ones when there are any
PARITY_CPP = "cpp_fp32" if COMPARE_FP32 else "cpp"


def cpp_model(precision):
    """The model file the C++ program runs at ``precision``."""
    if config["infer"]["backend"] != "cpu":
        return "results/export/model.mindir"
    return "results/quantize/model.xml" if precision == "int8" else "results/export/model.onnx"


def cpp_model_weights(precision):
    """The weights file beside an OpenVINO IR (int8), declared so that a new quantisation re-runs inference."""
    return ["results/quantize/model.bin"] if precision == "int8" and config["infer"]["backend"] == "cpu" else []


# AIR (deprecated by MindSpore, Ascend only) is written only when asked for on an Ascend run
EXPORT_AIR = "AIR" in config["export"]["formats"] and config["train"]["device_target"] == "Ascend"
# the quick evaluation of training runs as its own rule after train (never part of training's code)
QUICK_EVAL = config["train"]["quick_eval"] and not config["model"]["checkpoint"]
# GPU/Ascend runs check the device before any heavy stage (rule check_device)
DEVICE_CHECKED = config["train"]["device_target"] != "CPU"


def device_checked():
    """The device check's result as an input of the first heavy rules (nothing on CPU)."""
    return ["results/device/check.json"] if DEVICE_CHECKED else []


def device_resources(count):
    """Cluster request for ``count`` accelerators of train.device_target (none on CPU)."""
    target = config["train"]["device_target"]
    if target == "GPU":
        return {"gpu": count, "tasks_per_gpu": 0}
    if target == "Ascend":
        return {"gres": f"npu:{count}"}
    return {}


def pretrained_input(wildcards):
    return ["results/pretrained/backbone.ckpt"] if config["pretrained"] else []


def benchmarked_stages():
    """Stage names (rule, or rule_split) that write results/benchmarks/<stage>.tsv."""
    stages = ["prepare_dataset"] + (["prepare_eval_dataset"] if CROSS_DOMAIN else [])
    stages += ["import_checkpoint" if config["model"]["checkpoint"] else "train", "export", "build_infer", "evaluate"]
    stages += [f"features_python_{s}.{k}" for s in SPLITS for k in PYTHON_SHARDS]
    sharded = ["preprocess", "infer_cpp"] + (["infer_cpp_fp32"] if COMPARE_FP32 else [])
    stages += [f"{r}_{s}.{k}" for r in sharded for s in SPLITS for k in SHARDS]
    stages += ["quantize"] if PRECISION == "int8" else []
    stages += [f"evaluation_store_{src}_{s}" for src in EVALUATED_SOURCES for s in SPLITS]
    stages += ["quick_eval"] if QUICK_EVAL else []
    if config["pretrained"] and not config["model"]["checkpoint"]:
        stages.append("fetch_pretrained")
    return stages
