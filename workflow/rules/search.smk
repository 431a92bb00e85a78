# Search one's own crops (target results/search/report.html, config section search).
from functools import lru_cache

from snakemake.exceptions import WorkflowError

SEARCH = config["search"]
SEARCH_ROLES = ["queries"] + (["gallery"] if SEARCH["gallery"] else [])
SEARCH_SHARDS = shard_ids(SEARCH["shards"])  # search_list and search_features jobs per search folder


def search_folder(role):
    """The folder of a search role, or a clear stop when search.queries is not set."""
    folder = SEARCH[role]
    if not folder:
        raise WorkflowError("results/search/*: set search.queries (a folder of query images), e.g. --config search='{queries: /data/crops}'")
    return folder


def search_gallery_features():
    """The gallery's features: those of search.gallery, or the evaluation gallery's C++ features (its evaluation store)."""
    return "results/search/gallery.view.npz" if SEARCH["gallery"] else "results/features/cpp/gallery.store"


@lru_cache(maxsize=None)
def search_signature(role):
    """The search folder's signature (foundation.folders.folder_signature), computed once per parse:
    every search_list shard job reads it (about 1.2 s per 100,000 entries)."""
    return folder_signature(search_folder(role))


rule search_list:
    """One shard of a search folder's sorted entries (search.shards) -> the manifest of its readable images (others skipped and listed)."""
    output:
        manifest=temp("results/search/{role}.{shard}.csv"),
        skipped=temp("results/search/{role}_skipped.{shard}.txt"),
    log:
        "results/logs/search_list_{role}.{shard}.log",
    wildcard_constraints:
        role="queries|gallery",
    params:
        folder=lambda wc: search_folder(wc.role),
        # the folder's file names, sizes and dates: a change re-runs the listing
        signature=lambda wc: search_signature(wc.role),
        shard=lambda wc: (int(wc.shard), len(SEARCH_SHARDS)),
        code=script_code("search_list.py"),
    script:
        "../scripts/search_list.py"


rule search_list_join:
    """The shards' listings of a search folder -> its manifest and its list of skipped entries."""
    input:
        manifests=expand("results/search/{{role}}.{shard}.csv", shard=SEARCH_SHARDS),
        skipped=expand("results/search/{{role}}_skipped.{shard}.txt", shard=SEARCH_SHARDS),
    output:
        manifest="results/search/{role}.csv",
        skipped="results/search/{role}_skipped.txt",
    log:
        "results/logs/search_list_join_{role}.log",
    wildcard_constraints:
        role="queries|gallery",
    params:
        folder=lambda wc: search_folder(wc.role),
        code=script_code("search_list_join.py"),
    script:
        "../scripts/search_list_join.py"


rule search_features:
    """Features of one shard of a search folder's images from the C++ program (same model and precision as infer_cpp), cached by image content."""
    input:
        manifest="results/search/{role}.csv",
        bin="results/infer/bin/aligned_infer",
        model=cpp_model(PRECISION),
        weights=cpp_model_weights(PRECISION),
    output:
        temp("results/search/{role}.{shard}.view.npz"),
    log:
        "results/logs/search_features_{role}.{shard}.log",
    benchmark:
        "results/benchmarks/search_features_{role}.{shard}.tsv"
    wildcard_constraints:
        role="queries|gallery",
    threads: config["infer"]["threads"]
    resources:
        **stage_resources("other"),
        # the ascend backend: each shard's job asks the cluster for its own device
        **(device_resources(1) if config["infer"]["backend"] == "ascend" else {}),
    params:
        cache_dir="results/search/cache",
        dtype=SEARCH["dtype"],
        program=PROGRAM.as_param(),
        shard=lambda wc: shard_spec(wc.shard, SEARCH_SHARDS),
        code=script_code("search_features.py"),
    script:
        "../scripts/search_features.py"


rule search_view:
    """The shards' views of a search folder -> one view of the feature store, in the listing's order."""
    input:
        expand("results/search/{{role}}.{shard}.view.npz", shard=SEARCH_SHARDS),
    output:
        "results/search/{role}.view.npz",
    log:
        "results/logs/search_view_{role}.log",
    wildcard_constraints:
        role="queries|gallery",
    params:
        code=script_code("search_view.py"),
    script:
        "../scripts/search_view.py"


rule search:
    """Queries x gallery with the evaluation's distance and calibrated threshold -> matches.csv and a page of thumbnails."""
    input:
        queries="results/search/queries.view.npz",
        gallery=search_gallery_features(),
        skipped="results/search/queries_skipped.txt",
        metrics="results/eval/metrics.json",
        template=str(PKG / "search" / "templates" / "search.html.j2"),
    output:
        matches="results/search/matches.csv",
        report="results/search/report.html",
    log:
        "results/logs/search.log",
    benchmark:
        "results/benchmarks/search.tsv"
    threads: config["evaluation"]["threads"]
    params:
        top_k=SEARCH["top_k"],
        shortlist=SEARCH["shortlist"],
        code=script_code("search.py"),
    script:
        "../scripts/search.py"
