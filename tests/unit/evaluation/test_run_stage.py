"""The evaluate stage (evaluation/run.py run_evaluation) on small feature files."""

import json

import pandas as pd

from alignedreid.foundation.contracts import VARIANTS
from tests.stage_fixtures import write_stage_outputs


def test_evaluate_stage_writes_every_variant(tmp_path):
    write_stage_outputs(tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert [v for v in VARIANTS if v in m] == list(VARIANTS)
    assert m["num_query"] == 2 and m["num_gallery"] == 6 and m["rerank"] == {"k1": 3, "k2": 2, "lambda": 0.3}
    for v in VARIANTS:
        assert len(m[v]["cmc"]) == 4 and m[v]["num_valid_queries"] == 2 and m[v]["cmc"][-1] == 1.0  # 2 true matches each in top 4
    pq = pd.read_csv(tmp_path / "per_query.csv")
    assert len(pq) == 2 * len(VARIANTS) and set(pq.variant) == set(VARIANTS)
