import json

import pandas as pd
import pytest
import yaml

from tests.conftest import run_snakemake

pytestmark = pytest.mark.workflow


def test_dry_run_lists_dag(repo_copy):
    out = run_snakemake(repo_copy, "-n", "results/report.html").stdout
    for rule in ["prepare_dataset", "report"]:
        assert rule in out


def test_bad_config_value_fails_at_parse_time(repo_copy):
    proc = run_snakemake(repo_copy, "-n", "--config", "dataset={source: imagenet}", check=False)
    assert proc.returncode != 0
    assert "imagenet" in proc.stderr + proc.stdout


def test_prepare_dataset_on_synthetic_default(repo_copy):
    run_snakemake(repo_copy, "results/data/summary.json")
    summary = json.loads((repo_copy / "results/data/summary.json").read_text())
    assert summary["source"] == "synthetic"
    assert summary["splits"]["train"]["images"] == 32 * 12
    gallery = pd.read_csv(repo_copy / "results/data/gallery.csv")
    assert (gallery.pid == -1).sum() == 12 and (gallery.pid == 0).sum() == 24
    assert all((repo_copy / p).is_file() for p in gallery.path)
    assert (repo_copy / "results/logs/prepare_dataset.log").read_text().count("manifests: train") == 1  # logged once
    assert (repo_copy / "results/benchmarks/prepare_dataset.tsv").is_file()
    # cached: nothing to do on the second run
    assert "Nothing to be done" in run_snakemake(repo_copy, "results/data/summary.json").stderr


def test_market_folder_not_generated_by_us(repo_copy, tmp_path):
    from tests.market_fixture import make_market

    counts = make_market(tmp_path / "market", corrupt="0011_c3s1_001201_01.jpg")
    cfg = tmp_path / "market.yaml"
    cfg.write_text(
        yaml.safe_dump({"dataset": {"source": "market1501", "root": str(tmp_path / "market"), "skip_corrupt": True, "expected_counts": counts}})
    )
    run_snakemake(repo_copy, "results/data/summary.json", "--configfile", str(cfg))
    gallery = pd.read_csv(repo_copy / "results/data/gallery.csv")
    assert len(gallery) == 6 and sorted(gallery.pid.tolist()) == [-1, -1, 0, 0, 11, 13]
    log = (repo_copy / "results/logs/prepare_dataset.log").read_text()
    assert "skipped corrupt image" in log and "0011_c3s1_001201_01.jpg" in log


def test_bad_dataset_fails_clearly_and_leaves_nothing(repo_copy, tmp_path):
    (tmp_path / "notmarket").mkdir()
    proc = run_snakemake(
        repo_copy, "results/data/summary.json", "--config", f"dataset={{source: market1501, root: '{tmp_path / 'notmarket'}'}}", check=False
    )
    assert proc.returncode != 0
    assert "not a Market-1501 folder" in proc.stderr
    assert not (repo_copy / "results/data/train.csv").exists()
