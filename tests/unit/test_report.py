"""The report (report.py) rendered from hand-made stage outputs."""

import json
import re

import pytest

from alignedreid.foundation.config import resolve
from alignedreid.foundation.contracts import VARIANTS
from alignedreid.foundation.io_utils import write_json
from alignedreid.report.page import shard_logs, write_report
from tests.conftest import report_numbers
from tests.stage_fixtures import write_stage_outputs


def test_report_shows_the_numbers_it_was_given(tmp_path):
    inputs, bench, logs = write_stage_outputs(tmp_path)
    config = resolve({})
    write_report(tmp_path / "report.html", inputs, config, bench, logs, {s: shard_logs(logs, f"infer_cpp_{s}") for s in ("query", "gallery")})
    html = (tmp_path / "report.html").read_text()
    m = json.loads((tmp_path / "metrics.json").read_text())
    shown = report_numbers(html)
    for v in VARIANTS:
        assert float(shown[f"{v}.mAP"]) == pytest.approx(100 * m[v]["mAP"], abs=0.05)
    assert float(shown["parity"]) == pytest.approx(2e-6, rel=0.01)
    assert "<span data-where='train'>SLURM job 77 on node3</span>" in html
    assert "<span data-where='infer_cpp_query.0'>this host</span>" in html
    assert "800 ms (seed: 79 ms on one Ascend 910)" in html and "250.5" in html
    assert "SYNTHETIC" in html and "trained from scratch" in html and "ABOVE" not in html
    assert not re.search(r"{{|{%", html)  # the template rendered completely


def test_report_flags_parity_beyond_tolerance_on_top(tmp_path):
    inputs, bench, logs = write_stage_outputs(tmp_path, parity_diff=3e-3)
    write_report(tmp_path / "r.html", inputs, resolve({}), bench, logs, {s: shard_logs(logs, f"infer_cpp_{s}") for s in ("query", "gallery")})
    html = (tmp_path / "r.html").read_text()
    body = html.split("<h1>")[1]
    assert body.index("C++ and Python features differ by 3.00e-03") < body.index("<h2>")  # a warning above every section
    assert "ABOVE" in html


@pytest.mark.parametrize(
    "train_src,eval_src,seed_shown,names",
    [
        ("market1501", None, True, ("Market-1501", "Market-1501")),
        ("market1501", "cuhk03", False, ("Market-1501", "CUHK03-NP detected")),
        ("dukemtmc", None, False, ("DukeMTMC-reID", "DukeMTMC-reID")),
    ],
)
def test_report_names_datasets_and_shows_seed_only_for_market(tmp_path, train_src, eval_src, seed_shown, names):
    inputs, bench, logs = write_stage_outputs(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    write_json(tmp_path / "summary.json", {**summary, "source": train_src})
    if eval_src:
        write_json(tmp_path / "eval_summary.json", {**summary, "source": eval_src, "cuhk03_images": "detected"})
        inputs["eval_summary"] = tmp_path / "eval_summary.json"
    write_report(tmp_path / "r.html", inputs, resolve({}), bench, logs, {s: shard_logs(logs, f"infer_cpp_{s}") for s in ("query", "gallery")})
    html = (tmp_path / "r.html").read_text()
    assert ("seed mAP" in html) is seed_shown
    assert f'<b data-fact="trained_on">{names[0]}</b>' in html and f'<b data-fact="evaluated_on">{names[1]}</b>' in html
    assert ("(cross-domain)" in html) is bool(eval_src) and '<b data-fact="flip">off</b>' in html
    assert "SYNTHETIC" not in html


def test_report_says_when_shortlists_ranked_the_local_variants(tmp_path):
    inputs, bench, logs = write_stage_outputs(tmp_path)
    infer_logs = {s: shard_logs(logs, f"infer_cpp_{s}") for s in ("query", "gallery")}
    write_report(tmp_path / "exact.html", inputs, resolve({}), bench, logs, infer_logs)
    assert 'data-fact="shortlist"' not in (tmp_path / "exact.html").read_text()
    m = json.loads((tmp_path / "metrics.json").read_text())
    write_json(tmp_path / "metrics.json", {**m, "shortlist": 200})
    write_report(tmp_path / "short.html", inputs, resolve({}), bench, logs, infer_logs)
    assert '<b data-fact="shortlist">200</b>' in (tmp_path / "short.html").read_text()
