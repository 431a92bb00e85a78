import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "config" / "schema.yaml")


def load(name):
    return yaml.safe_load((REPO / "config" / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "market1501.yaml"])
def test_shipped_configs_validate(name):
    validate(load(name), SCHEMA)


def test_defaults_are_filled():
    cfg = {"dataset": {"source": "synthetic"}}
    validate(cfg, SCHEMA, set_default=True)
    assert cfg["dataset"]["synthetic"]["train_ids"] == 32
    assert cfg["dataset"]["strict_counts"] is True


@pytest.mark.parametrize(
    "patch,needle",
    [
        ({"dataset": {"source": "imagenet"}}, "imagenet"),
        ({"dataset": {"synthetic": {"cameras": 12}}}, "12"),
        ({"dataset": {"synthetic": {"train_ids": "many"}}}, "many"),
        ({"dataset": {"skip_corrupt": "yes"}}, "yes"),
        ({"dataset": {"colour": 1}}, "colour"),
        ({"unknown_section": {}}, "unknown_section"),
        ({"resources": {"train": {"mem_mb": "lots"}}}, "lots"),
        ({"resources": {"train": {"gpus": 8}}}, "gpus"),
        ({"train": {"nodes": 0}}, "0"),
    ],
)
def test_bad_values_rejected(patch, needle):
    cfg = copy.deepcopy(load("config.yaml"))

    def merge(dst, src):
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = v

    merge(cfg, patch)
    with pytest.raises(Exception, match=needle):
        validate(cfg, SCHEMA)


def test_every_key_documented():
    schema = yaml.safe_load(Path(SCHEMA).read_text())

    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            assert "description" in sub, f"{path}{key} has no description"
            assert "type" in sub or "enum" in sub, f"{path}{key} has no type"
            if sub.get("type") == "object" or "object" in (sub.get("type") or []):
                assert sub.get("additionalProperties") is False, f"{path}{key} accepts unknown keys"
                walk(sub, f"{path}{key}.")

    assert schema["additionalProperties"] is False
    walk(schema, "")
