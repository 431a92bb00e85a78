# AlignedReID++ pipeline: dataset -> pretrained -> train -> export -> C++ inference -> features
# -> evaluation -> report. Nothing at parse time touches the network or does heavy work
# (this file is parsed again inside every cluster job).
from snakemake.utils import min_version

from alignedreid.data.spec import check_datasets
from alignedreid.foundation.config import resolve
from alignedreid.foundation.folders import folder_signature

min_version("9.0")


configfile: "config/config.yaml"


# validate against the schema and fill every default, once; a bad key or value stops here, named
config.update(resolve(config))  # the schema ships in the package: src/alignedreid/foundation/schema.yaml
check_datasets(config)  # the dataset sections' rules the schema cannot say (synthetic spec, camera pattern)


include: "workflow/rules/common.smk"
include: "workflow/rules/device.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/search.smk"


# light rules stay on the submitting host when a cluster executor is used (the gathers and the
# evaluation stores read and write features in chunks, like a copy); fetch_pretrained too, because
# compute nodes often have no internet access
localrules:
    all,
    fetch_pretrained,
    report,
    parity,
    features_cpp,
    evaluation_store,
    features_python_join,
    search_list_join,
    search_view,


rule all:
    input:
        "results/report.html",
