rule export:
    """Trained checkpoint -> MindIR (always), ONNX, AIR (Ascend only)."""
    input:
        ckpt="results/train/model.ckpt",
        code=package_sources("export.py", "checkpoint.py", "model.py"),
    output:
        mindir="results/export/model.mindir",
        onnx="results/export/model.onnx",
    log:
        "results/logs/export.log",
    benchmark:
        "results/benchmarks/export.tsv"
    resources:
        **stage_resources("other"),
        **(device_resources(1) if EXPORT_AIR else {}),
    params:
        model=config["model"],
        export=config["export"],
        # MindIR and ONNX are device-independent and written on the CPU; only AIR needs an Ascend device
        device_target="Ascend" if EXPORT_AIR else "CPU",
    script:
        "../scripts/export.py"


rule build_infer:
    """CMake build of ascend310_infer/ (rebuilt only when its sources or the backend change)."""
    input:
        sources=sorted(str(p) for p in (REPO / "ascend310_infer").rglob("*") if p.is_file() and "build" not in p.parts),
    output:
        "results/infer/bin/aligned_infer",
    log:
        "results/logs/build_infer.log",
    benchmark:
        "results/benchmarks/build_infer.tsv"
    threads: 2
    resources:
        **stage_resources("other"),
    params:
        backend=config["infer"]["backend"],
        src=lambda wildcards, input: os.path.commonpath(input.sources),  # the ascend310_infer/ folder
    script:
        "../scripts/build_infer.py"


rule preprocess:
    """Query/gallery images -> the C++ program's inputs (infer.io: one packed uint8 file, or a .bin per image); temporary."""
    input:
        manifest=f"{EVAL_DATA}/{{split}}.csv",
        code=package_sources("features/cpp_files.py", "data/loader.py"),
    output:
        infer_input_output(),
    log:
        "results/logs/preprocess_{split}.log",
    benchmark:
        "results/benchmarks/preprocess_{split}.tsv"
    wildcard_constraints:
        split="query|gallery",
    threads: config["infer"]["threads"]
    resources:
        **stage_resources("other"),
    params:
        height=config["model"]["height"],
        width=config["model"]["width"],
        layout=config["infer"]["io"],
    script:
        "../scripts/preprocess.py"


rule infer_cpp:
    """The C++ program runs the exported model over every input (its output folder appears only complete)."""
    input:
        bin="results/infer/bin/aligned_infer",
        model=lambda wc: "results/export/model.onnx" if config["infer"]["backend"] == "cpu" else "results/export/model.mindir",
        inputs=infer_input_path(),
        code=package_sources("features/cpp_files.py", "runlog.py"),
    output:
        temp(directory("results/infer/output/{split}")),
    log:
        "results/logs/infer_cpp_{split}.log",
    benchmark:
        "results/benchmarks/infer_cpp_{split}.tsv"
    wildcard_constraints:
        split="query|gallery",
    threads: config["infer"]["threads"]
    resources:
        **stage_resources("other"),
    params:
        batch=config["infer"]["batch_size"],
        height=config["model"]["height"],
        width=config["model"]["width"],
        device_id=config["infer"]["device_id"],
        flip=config["infer"]["flip"],
    script:
        "../scripts/infer_cpp.py"


rule features_cpp:
    """C++ outputs -> feature files (docs/architecture.md §3)."""
    input:
        manifest=f"{EVAL_DATA}/{{split}}.csv",
        outputs="results/infer/output/{split}",
        code=package_sources("features/cpp_files.py", "evaluation/features_io.py"),
    output:
        "results/features/cpp/{split}.npz",
    log:
        "results/logs/features_cpp_{split}.log",
    wildcard_constraints:
        split="query|gallery",
    script:
        "../scripts/features_cpp.py"


rule features_python:
    """Reference features: MindSpore Python inference on the trained checkpoint, on the CPU in float32 whatever
    the training device (the C++ program's precision), for a fixed sample of evaluation.parity_sample images
    (every image when evaluate reads them)."""
    input:
        ckpt="results/train/model.ckpt",
        manifest=f"{EVAL_DATA}/{{split}}.csv",
        code=package_sources("features/python_ref.py", "checkpoint.py", "model.py", "data/loader.py", "cpu_runtime.py"),
    output:
        "results/features/python/{split}.npz",
    log:
        "results/logs/features_python_{split}.log",
    benchmark:
        "results/benchmarks/features_python_{split}.tsv"
    wildcard_constraints:
        split="query|gallery",
    threads: config["infer"]["threads"]
    resources:
        **stage_resources("other"),
    params:
        model=config["model"],
        device_target="CPU",
        sample=0 if config["evaluation"]["feature_source"] == "python" else config["evaluation"]["parity_sample"],
        flip=config["infer"]["flip"],
    script:
        "../scripts/features_python.py"


rule parity:
    """max |C++ - Python| over the Python reference rows; fails beyond the tolerance (contracts.PARITY_TOLERANCE)."""
    input:
        cpp=expand("results/features/cpp/{split}.npz", split=["query", "gallery"]),
        python=expand("results/features/python/{split}.npz", split=["query", "gallery"]),
        code=package_sources("features/parity.py", "contracts.py"),
    output:
        "results/features/parity.json",
    log:
        "results/logs/parity.log",
    script:
        "../scripts/parity.py"
