rule export:
    """Trained checkpoint -> MindIR (always), ONNX, AIR (Ascend only)."""
    input:
        ckpt="results/train/model.ckpt",
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
        code=script_code("export.py"),
    script:
        "../scripts/export.py"


rule build_infer:
    """CMake build of ascend310_infer/ (rebuilt only when its sources or the backend change)."""
    input:
        # relative to the working directory: a moved or copied project keeps its build
        sources=sorted(os.path.relpath(p) for p in (REPO / "ascend310_infer").rglob("*") if p.is_file() and "build" not in p.parts),
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
        # the build depends on ascend310_infer/ and the toolchain, not on the package's Python modules
        toolchain=toolchain_identity(),
        code=script_code("build_infer.py", package=False),
    script:
        "../scripts/build_infer.py"


rule preprocess:
    """Query/gallery images of one shard -> the C++ program's inputs (infer.io: one packed uint8 file, or a .bin per image); temporary."""
    input:
        manifest=f"{EVAL_DATA}/{{split}}.csv",
    output:
        infer_input_output(),
    log:
        "results/logs/preprocess_{split}.{shard}.log",
    benchmark:
        "results/benchmarks/preprocess_{split}.{shard}.tsv"
    threads: config["infer"]["threads"]
    resources:
        **stage_resources("other"),
    params:
        size=INPUT_SIZE,
        layout=config["infer"]["io"],
        shard=shard_param,
        code=script_code("preprocess.py"),
    script:
        "../scripts/preprocess.py"


rule infer_cpp:
    """The C++ program runs the exported model (the INT8 IR with infer.precision int8) over the inputs of one shard (its output folder appears only complete)."""
    input:
        bin="results/infer/bin/aligned_infer",
        model=cpp_model(PRECISION),
        weights=cpp_model_weights(PRECISION),
        inputs=infer_input_path(),
    output:
        temp(directory("results/infer/output/{split}.{shard}")),
    log:
        "results/logs/infer_cpp_{split}.{shard}.log",
    benchmark:
        "results/benchmarks/infer_cpp_{split}.{shard}.tsv"
    threads: config["infer"]["threads"]
    resources:
        **stage_resources("other"),
        # the ascend backend: each shard's job asks the cluster for its own device
        **(device_resources(1) if config["infer"]["backend"] == "ascend" else {}),
    params:
        program=PROGRAM.as_param(),
        code=script_code("infer_cpp.py"),
    script:
        "../scripts/infer_cpp.py"


if COMPARE_FP32:

    use rule infer_cpp as infer_cpp_fp32 with:
        input:
            bin="results/infer/bin/aligned_infer",
            model=cpp_model("fp32"),
            weights=[],
            inputs=infer_input_path(),
        output:
            temp(directory("results/infer/output_fp32/{split}.{shard}")),
        log:
            "results/logs/infer_cpp_fp32_{split}.{shard}.log",
        benchmark:
            "results/benchmarks/infer_cpp_fp32_{split}.{shard}.tsv"
        params:
            program=PROGRAM.at("fp32").as_param(),


if PRECISION == "int8":

    rule quantize:
        """infer.precision int8: the ONNX export -> an INT8 OpenVINO IR (NNCF), calibrated on a seeded sample of the training split only."""
        input:
            onnx="results/export/model.onnx",
            train="results/data/train.csv",
        output:
            xml="results/quantize/model.xml",
            bin="results/quantize/model.bin",
            calibration="results/quantize/calibration.json",
        log:
            "results/logs/quantize.log",
        benchmark:
            "results/benchmarks/quantize.tsv"
        threads: config["infer"]["threads"]
        resources:
            **stage_resources("other"),
        params:
            size=INPUT_SIZE,
            calibration=config["infer"]["calibration"],
            code=script_code("quantize.py"),
        script:
            "../scripts/quantize.py"


rule features_cpp:
    """C++ outputs of every shard -> the split's feature file (docs/architecture.md §3)."""
    input:
        manifest=f"{EVAL_DATA}/{{split}}.csv",
        outputs=expand("results/infer/output/{{split}}.{shard}", shard=SHARDS),
    output:
        "results/features/cpp/{split}.npz",
    log:
        "results/logs/features_cpp_{split}.log",
    params:
        model=cpp_model(PRECISION),  # named when an output is NaN or inf
        batch=PROGRAM.batch,  # where the shards' rows were cut
        code=script_code("features_cpp.py"),
    script:
        "../scripts/features_cpp.py"


if COMPARE_FP32:

    localrules:
        features_cpp_fp32,

    use rule features_cpp as features_cpp_fp32 with:
        input:
            manifest=f"{EVAL_DATA}/{{split}}.csv",
            outputs=expand("results/infer/output_fp32/{{split}}.{shard}", shard=SHARDS),
        output:
            "results/features/cpp_fp32/{split}.npz",
        log:
            "results/logs/features_cpp_fp32_{split}.log",
        params:
            model=cpp_model("fp32"),


rule features_python:
    """Reference features: MindSpore Python inference on the trained checkpoint, on the CPU in float32 whatever
    the training device (the C++ program's precision), for a fixed sample of evaluation.parity_sample images
    (every image when evaluate reads them: then in infer.shards jobs per split)."""
    input:
        ckpt="results/train/model.ckpt",
        manifest=f"{EVAL_DATA}/{{split}}.csv",
    output:
        temp("results/features/python/{split}.{shard}.npz"),
    log:
        "results/logs/features_python_{split}.{shard}.log",
    benchmark:
        "results/benchmarks/features_python_{split}.{shard}.tsv"
    threads: config["infer"]["threads"]
    resources:
        **stage_resources("other"),
    params:
        model=config["model"],
        device_target="CPU",
        sample=0 if PYTHON_FEATURES_ALL else config["evaluation"]["parity_sample"],
        flip=config["infer"]["flip"],
        shard=lambda wc: (int(wc.shard), len(PYTHON_SHARDS)),
        code=script_code("features_python.py"),
    script:
        "../scripts/features_python.py"


rule features_python_join:
    """The shards' reference features of a split -> its feature file (one shard unless evaluate reads them)."""
    input:
        shards=expand("results/features/python/{{split}}.{shard}.npz", shard=PYTHON_SHARDS),
        manifest=f"{EVAL_DATA}/{{split}}.csv",
    output:
        "results/features/python/{split}.npz",
    log:
        "results/logs/features_python_join_{split}.log",
    params:
        code=script_code("features_python_join.py"),
    script:
        "../scripts/features_python_join.py"


rule parity:
    """max |C++ fp32 - Python| over the Python reference rows, failing beyond the tolerance (contracts.PARITY_TOLERANCE);
    with infer.precision int8/bf16 also the low-precision features' difference, for information."""
    input:
        cpp=expand(f"results/features/{PARITY_CPP}/{{split}}.npz", split=SPLITS),
        python=expand("results/features/python/{split}.npz", split=SPLITS),
        low_precision=expand("results/features/cpp/{split}.npz", split=SPLITS) if COMPARE_FP32 else [],
        onnx="results/export/model.onnx",
        manifests=expand(f"{EVAL_DATA}/{{split}}.csv", split=SPLITS),
    output:
        "results/features/parity.json",
    log:
        "results/logs/parity.log",
    params:
        precision=PRECISION,
        # without an fp32 C++ run the compared features are int8/bf16 ones: reported, not held to 1e-4
        enforce=PRECISION == "fp32" or COMPARE_FP32,
        min_cosine=config["infer"]["min_cosine"],
        size=INPUT_SIZE,
        flip=config["infer"]["flip"],
        code=script_code("parity.py"),
    script:
        "../scripts/parity.py"
