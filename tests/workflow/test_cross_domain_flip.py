"""Cross-domain evaluation with test-time flip, the whole DAG for real: train on a synthetic
Market-layout dataset, evaluate on a synthetic MSMT17-layout one (read through its list files),
with flip on in the C++ program and in the Python reference."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_pipeline, tiny_config

pytestmark = pytest.mark.workflow

CONFIG = tiny_config(
    train={"epochs": 1, "quick_eval": False},
    infer={"flip": True},
    evaluation={
        "parity_sample": 0,
        "dataset": {
            "source": "synthetic",
            "synthetic": {
                "layout": "msmt17",
                "seed": 9,
                "train_ids": 3,
                "test_ids": 5,
                "images_per_id": 5,
                "cameras": 12,
                "queries_per_id": 2,
                "distractors": 3,
                "junk": 0,
            },
        },
    },
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_pipeline(tmp_path_factory.mktemp("xdomain"), CONFIG, name="xd.yaml")


def test_evaluated_on_the_other_dataset(run):
    r = run / "results"
    eval_summary = json.loads((r / "data/eval/summary.json").read_text())
    assert eval_summary["synthetic_layout"] == "msmt17" and eval_summary["release"] == "V1"
    metrics = json.loads((r / "eval/metrics.json").read_text())
    query = pd.read_csv(r / "data/eval/query.csv")
    gallery = pd.read_csv(r / "data/eval/gallery.csv")
    assert (metrics["num_query"], metrics["num_gallery"]) == (len(query), len(gallery)) == (10, 18)
    assert query.path.str.contains("MSMT17_V1/test/").all()
    z = np.load(r / "features/cpp/gallery.npz")
    np.testing.assert_array_equal(z["pid"], gallery.pid)
    assert len(pd.read_csv(r / "data/train.csv")) == 48  # trained on the training dataset


def test_flip_parity_and_effect(run, monkeypatch):
    r = run / "results"
    parity = json.loads((r / "features/parity.json").read_text())
    assert parity["max_abs_diff"] <= 1e-4 and parity["rows_compared"] == 28
    # the flip is really applied: without it the Python features differ from the C++ ones
    from alignedreid.evaluation.distance import l2_normalise
    from alignedreid.features.python_ref import python_features

    monkeypatch.chdir(run)  # manifest paths are relative to the workflow's folder
    python_features(
        r / "train/model.ckpt",
        r / "data/eval/query.csv",
        run / "noflip.npz",
        {"depth": 18, "height": 64, "width": 32, "conv_impl": "native"},
        0,
        "CPU",
        False,
    )
    plain, cpp = np.load(run / "noflip.npz"), np.load(r / "features/cpp/query.npz")
    assert np.abs(l2_normalise(plain["global"]) - l2_normalise(cpp["global"])).max() > 1e-3


def test_report_names_both_datasets_and_flip(run):
    html = (run / "results/report.html").read_text()
    assert '<b data-fact="trained_on">synthetic (Market-1501 layout)</b>' in html
    assert '<b data-fact="evaluated_on">synthetic (MSMT17 layout)</b>' in html
    assert '<b data-fact="flip">on</b>' in html
    assert "seed mAP" not in html  # the model zoo's numbers only beside Market-1501 -> Market-1501
    assert "evaluation: gallery" in html
