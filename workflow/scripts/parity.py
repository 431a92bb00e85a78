"""Snakemake adapter for alignedreid.features.parity: writes parity.json, fails beyond the tolerance
(only where the compared C++ features are float32 ones); ONNX Runtime on the same rows beside."""

from alignedreid.features.onnx_ref import onnx_parity
from alignedreid.features.parity import ParityError, check_low_precision, check_parity, parity
from alignedreid.foundation.contracts import PARITY_TOLERANCE
from alignedreid.foundation.io_utils import write_json
from alignedreid.foundation.runlog import stage_logging

with stage_logging(snakemake.log[0], "parity", snakemake.output) as log:
    p, i = snakemake.params, snakemake.input
    result = parity(list(i.cpp), list(i.python))
    result["precision"] = "fp32" if p.enforce else p.precision
    result["enforced"] = p.enforce
    if i.low_precision:  # int8/bf16 beside an fp32 run: their distance to the reference, for the report
        low = parity(list(i.low_precision), list(i.python))
        keys = ("global_max_abs_diff", "local_max_abs_diff", "global_min_cosine", "local_min_cosine", "stripe_min_cosine", "max_abs_diff")
        result["low_precision"] = {"precision": p.precision, "min_cosine": p.min_cosine, **{k: low.get(k) for k in keys}}
        check_low_precision(low, p.precision, p.min_cosine, i.low_precision)
    result["onnxruntime"] = onnx_parity(i.onnx, list(i.manifests), list(i.python), *p.size, PARITY_TOLERANCE, snakemake.threads, p.flip)
    log.info("%s", result)
    if p.enforce:
        check_parity(result)
    else:  # the compared C++ features are int8/bf16 ones (no fp32 run beside): held to the cosine bound
        result["min_cosine"] = p.min_cosine
        check_low_precision(result, p.precision, p.min_cosine, i.cpp)
    if not result["onnxruntime"]["ok"]:
        raise ParityError(
            f"ONNX Runtime runs {i.onnx} {result['onnxruntime']['max_abs_diff']:.3e} away from MindSpore's features, above the "
            f"tolerance {PARITY_TOLERANCE:g}: the ONNX export does not compute what the trained network computes"
        )
    write_json(snakemake.output[0], result)
