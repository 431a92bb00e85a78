import copy
from pathlib import Path

import pytest
import yaml

from alignedreid.data.spec import check_datasets
from alignedreid.foundation import contracts
from alignedreid.foundation.config import resolve
from alignedreid.foundation.errors import ConfigError
from tests.conftest import merge_config

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "src" / "alignedreid" / "foundation" / "schema.yaml")


def start_up(cfg: dict) -> dict:
    """What the Snakefile runs before any rule: the schema and key checks, then the dataset sections'."""
    cfg = resolve(cfg)
    check_datasets(cfg)
    return cfg


def load(name):
    return yaml.safe_load((REPO / "config" / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "market1501.yaml"])
def test_shipped_configs_validate(name):
    cfg = resolve(load(name))
    assert cfg["model"]["depth"] in (18, 50) and cfg["train"]["stall_factor"] > 1


def test_msmt17_overlay_validates():
    cfg = resolve(merge_config(load("market1501.yaml"), load("msmt17.yaml")))
    assert cfg["dataset"]["source"] == "msmt17" and cfg["evaluation"]["shortlist"] == 200
    assert cfg["evaluation"]["stripe_dtype"] == "float16" and cfg["resources"]["evaluate"]["mem_mb"] >= 6000  # the measured 5.5 GiB fits
    assert cfg["evaluation"]["variants"] == ["global", "global_local", "global_rerank", "global_local_rerank"]  # all four on shortlists
    from alignedreid.evaluation.run import plan_variants

    ev = cfg["evaluation"]
    assert plan_variants(11659, 82161, ev["variants"], True, ev["matrix_budget_gb"], ev["shortlist"], ev["rerank"]["k1"])[0] == ev["variants"]
    assert cfg["dataset"]["workers"] == 8  # the rest of the recipe kept


def test_defaults_are_filled():
    given = {"dataset": {"source": "synthetic"}, "pretrained": {"path": "/x.ckpt"}}
    cfg = resolve(given)
    assert cfg["dataset"]["synthetic"]["train_ids"] == 32
    assert cfg["dataset"]["strict_counts"] is True
    assert cfg["train"]["augment"] == {"translate": True, "flip": True, "erasing": True}  # nested defaults
    assert cfg["pretrained"] == {
        "path": "/x.ckpt",
        "url": None,
        "sha256": None,
        "cache_dir": "~/.cache/alignedreid/pretrained",
        "retries": 5,
        "timeout_s": 60,
    }  # a given nullable section gets its defaults
    assert resolve({})["pretrained"] is None
    assert given == {"dataset": {"source": "synthetic"}, "pretrained": {"path": "/x.ckpt"}}  # input not modified


def test_re_ranking_defaults_come_from_the_schema_and_are_the_recipes():
    import inspect

    from alignedreid.evaluation import re_ranking

    rr = resolve({})["evaluation"]["rerank"]
    assert (rr["k1"], rr["k2"], rr["lambda"]) == (contracts.RERANK_K1, contracts.RERANK_K2, contracts.RERANK_LAMBDA) == (20, 6, 0.3)
    params = inspect.signature(re_ranking).parameters
    assert (params["k1"].default, params["k2"].default, params["lambda_value"].default) == (20, 6, 0.3)


@pytest.mark.parametrize(
    "patch,needle",
    [
        ({"dataset": {"source": "imagenet"}}, r"config key dataset.source: 'imagenet' is not one of"),
        ({"dataset": {"synthetic": {"cameras": 120}}}, r"config key dataset.synthetic.cameras: 120 is greater than the maximum of 99"),
        ({"dataset": {"synthetic": {"cameras": 12}}}, r"dataset.synthetic: cameras must be between 2 and 9 for layout market1501"),
        ({"dataset": {"synthetic": {"layout": "dukemtmc"}}}, r"dataset.synthetic: junk must be 0 for layout dukemtmc"),
        ({"evaluation": {"dataset": {"source": "msmt17", "rooot": "/x"}}}, r"config key evaluation.dataset: Additional properties .*'rooot'"),
        (
            {"dataset": {"source": "folder", "root": "/x", "folder": {"camera_pattern": r"cam(\d+)"}}},
            r"dataset.folder.camera_pattern: .* has no named group 'cam'",
        ),
        ({"dataset": {"synthetic": {"train_ids": "many"}}}, r"config key dataset.synthetic.train_ids: 'many' is not of type 'integer'"),
        ({"infer": {"shards": 0}}, r"config key infer.shards: 0 is less than the minimum of 1"),
        ({"search": {"dtype": "int8"}}, r"config key search.dtype: 'int8' is not one of \['float32', 'float16'\]"),
        ({"dataset": {"skip_corrupt": "yes"}}, r"config key dataset.skip_corrupt: 'yes' is not of type 'boolean'"),
        ({"dataset": {"colour": 1}}, r"config key dataset: Additional properties are not allowed \('colour' was unexpected\)"),
        ({"unknown_section": {}}, r"config key \(top level\): Additional properties are not allowed \('unknown_section'"),
        ({"resources": {"train": {"mem_mb": "lots"}}}, r"config key resources.train.mem_mb: 'lots' is not of type 'integer'"),
        ({"resources": {"train": {"gpus": 8}}}, r"config key resources.train: Additional properties .*'gpus'"),
        ({"train": {"nodes": 0}}, r"config key train.nodes: 0 is less than the minimum of 1"),
        ({"train": {"max_steps": 0}}, r"config key train.max_steps: 0 is less than the minimum of 1"),
    ],
)
def test_bad_values_rejected(patch, needle):
    cfg = merge_config(copy.deepcopy(load("config.yaml")), patch)
    with pytest.raises(ConfigError, match=needle):
        start_up(cfg)


def test_every_key_documented():
    schema = yaml.safe_load(Path(SCHEMA).read_text())

    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            if "$ref" in sub:  # a shared definition (the dataset section, also evaluation.dataset)
                sub = {**schema["$defs"][sub["$ref"].rsplit("/", 1)[1]], **sub}
            assert "description" in sub, f"{path}{key} has no description"
            assert "type" in sub or "enum" in sub, f"{path}{key} has no type"
            if sub.get("type") == "object" or "object" in (sub.get("type") or []):
                assert sub.get("additionalProperties") is False, f"{path}{key} accepts unknown keys"
                walk(sub, f"{path}{key}.")

    assert schema["additionalProperties"] is False
    walk(schema, "")


@pytest.mark.parametrize(
    "patch,needle",
    [
        (
            {"infer": {"backend": "ascend", "batch_size": 16}, "export": {"batch_size": 1}},
            r"infer.batch_size \(16\) must equal export.batch_size \(1\) with infer.backend ascend",
        ),
        ({"train": {"device_num": 6, "nodes": 4}}, r"train.device_num \(6\) must be a multiple of train.nodes \(4\)"),
        ({"train": {"device_num": 8, "launcher": "rank_table"}}, "train.rank_table_file: required"),
        ({"evaluation": {"shortlist": 15}}, r"evaluation.shortlist \(15\) must be at least evaluation.rerank.k1 \+ 1 = 21"),
        (
            {"evaluation": {"shortlist": 200, "verification": {"variant": "global_local"}}},
            r"evaluation.verification.variant global_local needs every pair",
        ),
        ({"search": {"shortlist": 5, "top_k": 10}}, r"search.shortlist \(5\) must be at least search.top_k \(10\)"),
    ],
)
def test_inconsistent_keys_are_refused_before_any_work(patch, needle):
    with pytest.raises(ConfigError, match=needle):
        resolve(patch)
    resolve({"infer": {"backend": "ascend", "batch_size": 4}, "export": {"batch_size": 4}})  # consistent: fine
    resolve({"evaluation": {"shortlist": 15, "variants": ["global", "global_local"]}})  # no re-ranking on the shortlist: fine


def test_command_line_strings_become_the_schema_types():
    """snakemake --config train='{epochs: 3}' hands over every nested scalar as a string (YAML base loader)."""
    cfg = resolve(
        {
            "train": {"epochs": "3", "device_num": "1", "lr_max": "0.01", "nesterov": "false", "max_steps": "null", "loss_scale": "128"},
            "evaluation": {"rerank": {"enabled": "False", "k1": "10"}, "dataset": {"source": "market1501", "root": "/d", "workers": "2"}},
            "model": {"checkpoint": "null"},
        }
    )
    t = cfg["train"]
    assert (t["epochs"], t["device_num"], t["lr_max"], t["nesterov"], t["max_steps"]) == (3, 1, 0.01, False, None)
    assert t["loss_scale"] == "128"  # a string is allowed there: kept (the loss scaler reads it as a number)
    assert cfg["evaluation"]["rerank"] == {**cfg["evaluation"]["rerank"], "enabled": False, "k1": 10}
    assert cfg["evaluation"]["dataset"]["workers"] == 2  # inside a $ref'd, nullable section
    assert cfg["model"]["checkpoint"] is None
    with pytest.raises(ConfigError, match=r"config key train.epochs: 'three' is not of type 'integer'"):
        resolve({"train": {"epochs": "three"}})
    with pytest.raises(ConfigError, match=r"config key train.device_num: 0 is less than the minimum of 1"):
        resolve({"train": {"device_num": "0"}})
