# Helpers shared by the rule files.
from pathlib import Path

REPO = Path(workflow.basedir)
PKG = REPO / "src" / "alignedreid"


def package_sources(*names):
    """Package modules a rule depends on, declared as inputs so that editing them re-runs the
    rule (Snakemake's code trigger only sees the rule's own script). Names are paths relative to
    src/alignedreid, e.g. "data" (every module of the sub-package) or "losses.py"."""
    files = []
    for name in names:
        p = PKG / name
        files += sorted(str(f) for f in p.rglob("*.py")) if p.is_dir() else [str(p)]
    return files


def dataset_inputs(wildcards):
    root = config["dataset"].get("root")
    if config["dataset"]["source"] == "market1501" and root and str(root).lower().endswith(".zip"):
        return [root]
    return []


def pretrained_input(wildcards):
    return ["results/pretrained/backbone.ckpt"] if config["pretrained"] else []
