"""The dataset registry (data/sources.py): the schema's enums and the README's dataset table agree
with it, and a new source is one reader + writer and one ``register`` line."""

import re
from pathlib import Path

import pandas as pd
import pytest

from alignedreid.data import sources
from alignedreid.data.manifests import DatasetListing, SplitListing, listing_frame
from alignedreid.data.prepare import prepare_dataset
from alignedreid.data.synthetic_layouts import Writer
from alignedreid.foundation.config import load_schema
from alignedreid.foundation.errors import ConfigError
from tests.conftest import dataset_section

REPO = Path(__file__).resolve().parents[3]


def test_schema_enums_are_the_registry():
    props = load_schema()["$defs"]["dataset"]["properties"]  # the dataset section (training and evaluation.dataset)
    assert props["source"]["enum"] == [sources.SYNTHETIC, *sources.REGISTRY]
    assert props["synthetic"]["properties"]["layout"]["enum"] == list(sources.REGISTRY)


def test_readme_dataset_table_is_the_registry():
    readme = (REPO / "README.md").read_text()
    rows = re.findall(r"(?m)^\| `(\w+)` \| ([^|]+) \|", readme.split("| `dataset.source` |", 1)[1].split("\n\n", 1)[0])
    assert [key for key, _ in rows] == [*sources.REGISTRY, sources.SYNTHETIC]
    for key, name in rows[:-1]:
        assert name.startswith(sources.REGISTRY[key].name), (key, name)


def test_unknown_source_names_the_choices():
    with pytest.raises(ConfigError, match=r"dataset.source: expected one of synthetic, market1501, .*folder; got 'viper'"):
        sources.get("viper")


# --- a test-only source: a flat layout, one folder per split, PPPP-C-N.png ---------------------


def read_flat(root, cfg) -> DatasetListing:
    root = Path(root)
    splits = {}
    for split in ("train", "query", "gallery"):
        rows = []
        for p in sorted((root / split).glob("*.png")):
            pid, cam, _ = p.stem.split("-")
            rows.append((p, int(pid), int(cam) - 1))
        splits[split] = SplitListing(listing_frame(rows), where=str(root / split))
    return DatasetListing("flat", root, splits)


class FlatWriter(Writer):
    image_format = "PNG"

    def path(self, split, pid, cam, frame, kind):
        pid = self.pid_of(pid, kind)
        self.counter[pid] += 1
        return self.root / split / f"{pid:04d}-{cam}-{self.counter[pid]}.png"


@pytest.fixture
def flat_source():
    entry = sources.register(sources.Source("flat", "Flat test layout", read_flat, lambda cfg: None, FlatWriter))  # the one registry line
    yield entry
    sources.REGISTRY.pop("flat")


def test_a_new_source_is_one_module_and_one_registry_line(flat_source, tmp_path):
    spec = {"train_ids": 4, "test_ids": 3, "images_per_id": 4, "cameras": 3, "queries_per_id": 1, "distractors": 2, "junk": 0, "layout": "flat"}
    cfg = dataset_section({"source": "synthetic", "synthetic": {k: v for k, v in spec.items() if k != "layout"}})
    cfg["synthetic"]["layout"] = "flat"  # not in the schema's enum: the library call takes any registered source
    summary = prepare_dataset(cfg, tmp_path / "gen")
    train = pd.read_csv(tmp_path / "gen" / "train.csv")
    assert summary["splits"]["train"]["images"] == len(train) == 16 and train["pid"].nunique() == 4
    assert summary["source"] == "synthetic" and summary["synthetic_layout"] == "flat"
    assert all(Path(p).name.count("-") == 2 and p.endswith(".png") for p in train["path"])
    # the same files read as a release of the new source
    real = dict(cfg, source="flat", root=str(Path(summary["root"])))
    again = prepare_dataset(real, tmp_path / "read")
    assert again["source"] == "flat" and again["splits"] == summary["splits"]
    assert sources.display_name("flat") == "Flat test layout"
    with pytest.raises(ValueError, match="already registered"):
        sources.register(flat_source)
