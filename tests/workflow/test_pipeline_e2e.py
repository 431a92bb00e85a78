"""The whole DAG on a tiny synthetic config, for real: train, export, C++ build and inference,
features, evaluation, report; then the caching and re-run behaviour users rely on."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import merge_config, report_numbers, run_snakemake

pytestmark = pytest.mark.workflow


def planned_jobs(workdir, *args, override=None):
    files = ["tiny.yaml"]
    if override:  # a second config file (snakemake --config would pass nested numbers as strings)
        (workdir / "override.yaml").write_text(yaml.safe_dump(override))
        files.append("override.yaml")
    out = run_snakemake(workdir, "-n", "results/report.html", *args, "--configfile", *files).stdout
    if "Nothing to be done" in out:
        return set()
    block = out.split("Job stats:")[1].split("total")[0]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+\s*$", block, re.M)}


def test_full_dag_outputs(pipeline):
    r = pipeline / "results"
    metrics = json.loads((r / "eval/metrics.json").read_text())
    assert metrics["feature_source"] == "cpp"
    for v in ["global", "global_local", "global_rerank", "global_local_rerank"]:
        cmc = np.array(metrics[v]["cmc"])
        assert len(cmc) == 10 and np.all(np.diff(cmc) >= 0) and 0 < metrics[v]["mAP"] <= 1
    # the global numbers follow from the C++ feature files through the public evaluation API
    from alignedreid.evaluation import rank
    from alignedreid.evaluation.distance import global_distance
    from alignedreid.features.files import load_features

    q, g = load_features(r / "features/cpp/query.npz"), load_features(r / "features/cpp/gallery.npz")
    cmc, mAP = rank(global_distance(q.global_, g.global_), q.pid, g.pid, q.camid, g.camid, max_rank=10)
    assert mAP == pytest.approx(metrics["global"]["mAP"], abs=1e-6)
    np.testing.assert_allclose(cmc, metrics["global"]["cmc"], atol=1e-6)
    # evaluate read the evaluation stores the feature files were written into: the same numbers as the files
    from alignedreid.evaluation.run import evaluate_files
    from alignedreid.foundation.config import resolve
    from alignedreid.foundation.contracts import VARIANTS

    cfg = resolve(merge_config(yaml.safe_load((pipeline / "config/config.yaml").read_text()), yaml.safe_load((pipeline / "tiny.yaml").read_text())))
    cfg = cfg["evaluation"]
    from_files = evaluate_files(r / "features/cpp/query.npz", r / "features/cpp/gallery.npz", cfg)[0]
    assert {v: from_files[v] for v in VARIANTS} == {v: metrics[v] for v in VARIANTS}
    assert json.loads((r / "features/cpp/gallery.store/store.json").read_text())["dtype"] == cfg["stripe_dtype"]
    for src, rows in (("cpp", 12), ("python", 5)):  # Python reference: a sample of parity_sample rows
        z = np.load(r / f"features/{src}/query.npz")
        assert z["global"].shape == (rows, 512) and z["local"].shape == (rows, 2, 512)  # 64 px high -> 2 stripes
        np.testing.assert_allclose(np.linalg.norm(z["local"], axis=2), 1.0, atol=1e-4)
        assert z["pid"].dtype == np.int64 and list(z["path"][:1])[0].endswith(".jpg")
    assert len(set(np.load(r / "features/python/query.npz")["row"])) == 5
    parity = json.loads((r / "features/parity.json").read_text())
    assert parity["max_abs_diff"] <= 1e-4 and parity["rows_compared"] == 10 and parity["ok"]
    # the C++ program's packed inputs and its outputs are temporary: gone once read
    assert not list((r / "infer/input").glob("*")) and not (r / "infer/output/query").exists()
    assert "outputs MB" in (r / "report.html").read_text()
    assert (r / "export/model.mindir").stat().st_size > 1e6 and (r / "export/model.onnx").stat().st_size > 1e6
    html = (r / "report.html").read_text()
    assert "SYNTHETIC" in html and "data:image/png;base64" in html
    assert "<span data-where='train'>this host</span>" in html  # not a cluster run
    assert re.search(r"images/s \d", (r / "logs/infer_cpp_gallery.0.log").read_text())
    for rule in ["train", "export", "evaluate", "build_infer"]:
        assert (r / f"benchmarks/{rule}.tsv").is_file()


def test_second_run_does_nothing(pipeline):
    assert planned_jobs(pipeline) == set()


def test_evaluation_change_reruns_only_evaluate_and_report(pipeline):
    assert planned_jobs(pipeline, override={"evaluation": {"rerank": {"k1": 5}}}) == {"evaluate", "report"}
    # evaluating the Python features needs them for every image, not the parity sample
    every = {"features_python", "features_python_join", "parity", "evaluation_store", "evaluate", "report"}
    assert planned_jobs(pipeline, override={"evaluation": {"feature_source": "python"}}) == every
    # the stripe precision is the evaluation stores' and what reads them: no feature file is made again
    assert planned_jobs(pipeline, override={"evaluation": {"stripe_dtype": "float16"}}) == {"evaluation_store", "evaluate", "report"}


def test_export_change_never_retrains(pipeline):
    jobs = planned_jobs(pipeline, override={"export": {"batch_size": 2}})
    assert "export" in jobs and "train" not in jobs and "prepare_dataset" not in jobs
    assert {"infer_cpp", "features_cpp", "evaluate", "report"} <= jobs


def test_forcerun_and_until(pipeline):
    assert planned_jobs(pipeline, "--forcerun", "evaluate") == {"evaluate", "report"}
    assert planned_jobs(pipeline, "-R", "export") >= {"export", "infer_cpp", "report"}


def _edit_cost_rows():
    from alignedreid.devtools.edit_cost import table

    return {m: {r for r in reruns if not r.endswith("*")} for m, _, reruns in table()}


def test_comments_docstrings_and_formatting_rerun_nothing(pipeline):
    """A comment, a docstring or a reformat anywhere in src/, workflow/ or the Snakefile: 0 jobs."""
    files = sorted((pipeline / "src").rglob("*.py")) + sorted((pipeline / "workflow").rglob("*.py")) + sorted((pipeline / "workflow").rglob("*.smk"))
    files.append(pipeline / "Snakefile")
    saved = {f: f.read_text() for f in files}
    try:
        for f in files:
            f.write_text(saved[f] + "\n# a comment added by a user\n")
        loop = pipeline / "src/alignedreid/training/loop.py"
        loop.write_text(loop.read_text().replace('"""The AlignedReID++ training loop', '"""The training loop of AlignedReID++ (reworded)', 1))
        assert planned_jobs(pipeline) == set()
    finally:
        for f, text in saved.items():
            f.write_text(text)


@pytest.mark.parametrize(
    "module",
    [
        "foundation/errors.py",
        "foundation/io_utils.py",
        "evaluation/ranking.py",
        "evaluation/rerank.py",
        "features/python_ref.py",
        "report/page.py",
        "model/network.py",
    ],
)
def test_an_edit_reruns_what_the_table_says(pipeline, module):
    """A real edit of one module per row (a new statement) on the finished run: the dry run plans exactly
    the table's rules (docs/edit_cost.md). Reverting the edit plans nothing."""
    expected = _edit_cost_rows()[module]
    f = pipeline / "src/alignedreid" / module
    original = f.read_text()
    try:
        f.write_text(original + "\n_EDIT_PROBE = 1\n")
        assert planned_jobs(pipeline) == expected
    finally:
        f.write_text(original)
    assert planned_jobs(pipeline) == set()


def test_an_edit_of_an_adapter_script_reruns_its_rule_only_with_what_follows(pipeline):
    script = pipeline / "workflow/scripts/export.py"
    original = script.read_text()
    try:
        script.write_text(original + "\n_EDIT_PROBE = 1\n")
        jobs = planned_jobs(pipeline)
        assert "export" in jobs and "train" not in jobs
    finally:
        script.write_text(original)


def test_two_training_code_edits_keep_every_finished_epoch(pipeline, tmp_path):
    """Two successive edits of a weight-determining module re-train twice (real runs), each in a new
    checkpoint set; every earlier epoch checkpoint stays byte for byte, the log says why; reverting
    the code resumes the first set without training an epoch."""
    import hashlib

    work = tmp_path / "repo"
    shutil.copytree(pipeline, work, symlinks=True)
    sets = work / "results/train/checkpoints"

    def snapshot():
        return {str(p.relative_to(sets)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sets.glob("*/epoch_*.ckpt")}

    first = snapshot()
    assert first
    losses = work / "src/alignedreid/training/losses.py"
    original = losses.read_text()
    for n in (1, 2):
        losses.write_text(original + f"\n_EDIT_PROBE = {n}\n")
        assert "train" in planned_jobs(work)
        run_snakemake(work, "results/train/model.ckpt", "--configfile", "tiny.yaml", own_package=True)
        log = (work / "results/logs/train.log").read_text()
        assert "starting checkpoint set" in log and "code of training/losses.py" in log
        now = snapshot()
        assert {k: v for k, v in now.items() if k in first} == first  # every earlier epoch, byte for byte
        assert len({k.split("/")[0] for k in now}) == n + 1
    losses.write_text(original)
    run_snakemake(work, "results/train/model.ckpt", "--configfile", "tiny.yaml", own_package=True)
    assert re.search(r"resuming checkpoint set \w+ after epoch 2", (work / "results/logs/train.log").read_text())
    listing = subprocess.run(
        [sys.executable, "-m", "alignedreid.training.checkpoints", "list"], cwd=work, capture_output=True, text=True, check=True
    ).stdout
    assert len(re.findall(r"epochs \d+\.\.2 ", listing)) == 3 and "(current)" in listing


def test_sharded_inference_gives_the_unsharded_features_bitwise(pipeline, tmp_path):
    """infer.shards 3 on the finished run: only the inference stages and what reads them re-run, one
    preprocess and one infer_cpp job per shard; the gathered feature files equal the unsharded ones
    byte for byte, and so do the metrics; the report lists each shard's program speed."""
    work = tmp_path / "repo"
    shutil.copytree(pipeline, work, symlinks=True)
    sharded = {"infer": {"shards": 3}}
    assert planned_jobs(work, override=sharded) == {"preprocess", "infer_cpp", "features_cpp", "evaluation_store", "evaluate", "parity", "report"}
    proc = run_snakemake(work, "results/report.html", "--configfile", "tiny.yaml", "override.yaml")
    out = proc.stdout + proc.stderr
    assert len(re.findall(r"^(?:local)?rule infer_cpp:$", out, re.M)) == len(re.findall(r"^(?:local)?rule preprocess:$", out, re.M)) == 6  # 2 x 3
    for split in ("query", "gallery"):
        got, want = work / f"results/features/cpp/{split}.npz", pipeline / f"results/features/cpp/{split}.npz"
        assert got.read_bytes() == want.read_bytes(), split
        for k in range(3):
            assert re.search(r"images/s \d", (work / f"results/logs/infer_cpp_{split}.{k}.log").read_text())
    got, want = (json.loads((d / "results/eval/metrics.json").read_text()) for d in (work, pipeline))
    assert all(got[v] == want[v] for v in ("global", "global_local", "global_rerank", "global_local_rerank"))
    assert "gallery shard 3/3" in (work / "results/report.html").read_text()
    # the Python reference of every image (evaluation.feature_source python) is sharded too: one job per shard and split
    (work / "python.yaml").write_text(yaml.safe_dump({"infer": {"shards": 3}, "evaluation": {"feature_source": "python"}}))
    plan = run_snakemake(work, "-n", "results/report.html", "--configfile", "tiny.yaml", "python.yaml").stdout
    assert len(re.findall(r"^(?:local)?rule features_python:$", plan, re.M)) == 6  # 2 splits x 3 shards
    assert len(re.findall(r"^(?:local)?rule features_python_join:$", plan, re.M)) == 2


def test_report_numbers_equal_metrics(pipeline):
    html = (pipeline / "results/report.html").read_text()
    metrics = json.loads((pipeline / "results/eval/metrics.json").read_text())
    shown = report_numbers(html)
    assert len(shown) >= 4 * 4 + 1  # max_rank 10: mAP, R1, R5, R10 per variant, and parity
    for v in ["global", "global_local", "global_rerank", "global_local_rerank"]:
        assert float(shown[f"{v}.mAP"]) == pytest.approx(100 * metrics[v]["mAP"], abs=0.05)
        for r in (1, 5, 10):
            assert float(shown[f"{v}.R{r}"]) == pytest.approx(100 * metrics[v]["cmc"][r - 1], abs=0.05)
    parity = json.loads((pipeline / "results/features/parity.json").read_text())
    assert float(shown["parity"]) == pytest.approx(parity["max_abs_diff"], rel=0.01, abs=1e-12)


def test_a_program_with_fewer_threads_than_cpus_leaves_them_unpinned(pipeline, tmp_path):
    """OpenVINO pins a program's threads to the machine's first cores: two one-thread programs side by
    side (shards, query and gallery under --cores 2) then share one core at half speed each. With
    fewer threads than the CPUs it may use, the program turns the pinning off (as its compiled model reports)."""
    exe, onnx = pipeline / "results/infer/bin/aligned_infer", pipeline / "results/export/model.onnx"
    cpus = len(os.sched_getaffinity(0))
    assert cpus >= 2, "this check needs a machine with two CPUs or more"
    np.zeros(4 * 64 * 32 * 3, np.uint8).tofile(tmp_path / "in.u8")
    common = ["--model", onnx, "--input", tmp_path / "in.u8", "--batch", 4, "--height", 64, "--width", 32]
    p = subprocess.run([str(exe), *map(str, common), "--output_dir", tmp_path / "o1", "--threads", "1"], capture_output=True, text=True)
    assert p.returncode == 0 and "threads not pinned" in p.stdout, p.stdout + p.stderr


def test_cpp_program_errors_are_clear(pipeline, tmp_path):
    exe = pipeline / "results/infer/bin/aligned_infer"
    onnx = pipeline / "results/export/model.onnx"

    def run(*a):
        return subprocess.run([str(exe), *map(str, a)], capture_output=True, text=True)

    p = run("--model", tmp_path / "none.onnx", "--input_dir", tmp_path, "--output_dir", tmp_path / "o")
    assert p.returncode == 1 and "model file not found" in p.stderr
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "000000.bin").write_bytes(b"\0" * 100)
    p = run("--model", onnx, "--input_dir", tmp_path / "in", "--output_dir", tmp_path / "o", "--height", 64, "--width", 32)
    assert p.returncode == 1 and "000000.bin: 100 bytes, expected 24576" in p.stderr
    p = run("--model", onnx, "--batch", "x")
    assert p.returncode == 2
    p = run("--model", onnx, "--input_dir", tmp_path / "in", "--output_dir", tmp_path / "o", "--thread", 4)
    assert p.returncode == 2 and "unknown option '--thread'" in p.stderr and "usage: aligned_infer" in p.stderr
    p = run("--model", onnx, "--model", onnx)
    assert p.returncode == 2 and "given twice" in p.stderr
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    np.zeros(3 * 64 * 32, np.float32).tofile(tmp_path / "in" / "000000.bin")
    p = run("--model", tmp_path / "bad.onnx", "--input_dir", tmp_path / "in", "--output_dir", tmp_path / "o", "--height", 64, "--width", 32)
    assert p.returncode == 1 and "OpenVINO could not load" in p.stderr


def test_report_renders_in_a_browser(pipeline, tmp_path):
    """Headless Chromium (Debian package, installed by .ci/run) renders the page to a screenshot
    that shows content: plots and thumbnails are embedded, nothing is fetched."""
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed (.ci/run installs Debian's chromium)"
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            (pipeline / "results/report.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (2400, 1200)
    assert img.std() > 20  # not a blank page
    assert (img < 128).mean() > 0.02  # text, tables, plots and thumbnails


def _search(workdir, *config):
    return run_snakemake(workdir, "results/search/report.html", "--configfile", "tiny.yaml", "--config", *config)


def test_search_own_crops_against_the_evaluation_gallery(pipeline, tmp_path):
    """Queries: the evaluation's query images renamed and nested, with a file that is no image."""
    import pandas as pd

    from alignedreid.features.files import load_features
    from alignedreid.search.cache import load_view
    from alignedreid.search.ranking import search_distances

    r = pipeline / "results"
    query = pd.read_csv(r / "data/query.csv")
    crops = tmp_path / "my crops"
    (crops / "cam A" / "day 2").mkdir(parents=True)
    names = {}
    for i, p in enumerate(query.path[:6]):
        dst = crops / ("cam A/day 2" if i % 2 else "") / f"suspect #{i} (copy){'.jpeg' if i % 3 else '.JPG'}"
        shutil.copy(pipeline / p, dst)
        names[str(dst.resolve())] = i
    (crops / "notes.txt").write_text("no image")
    _search(pipeline, f"search={{queries: '{crops}', top_k: 5}}")
    matches = pd.read_csv(r / "search/matches.csv")
    assert list(matches.columns[:5]) == ["query", "rank", "gallery", "distance", "same_person"]
    assert set(matches["query"]) == set(names) and all(ranks == [1, 2, 3, 4, 5] for ranks in matches.groupby("query")["rank"].apply(list))
    assert (matches.groupby("query").distance.apply(lambda d: (d.diff().dropna() >= 0).all())).all()  # nearest first
    assert "notes.txt" in (r / "search/queries_skipped.txt").read_text()
    ours, evaluated = load_view(r / "search/queries.view.npz").features(), load_features(r / "features/cpp/query.npz")
    gallery = load_features(r / "features/cpp/gallery.npz")
    metrics = json.loads((r / "eval/metrics.json").read_text())
    variant, threshold = metrics["verification"]["variant"], metrics["verification"]["threshold"]
    rows = [names[p] for p in ours.path]
    np.testing.assert_allclose(ours.global_, evaluated.global_[rows], atol=1e-5)  # the same program, model and precision
    dist = search_distances(
        type(evaluated)(*[a[rows] for a in (evaluated.global_, evaluated.local, evaluated.pid, evaluated.camid, evaluated.path)], np.arange(6)),
        gallery,
        variant,
    )
    first = matches[matches["rank"] == 1].set_index("query")
    for p, i in names.items():
        j = int(np.argmin(dist[rows.index(i)]))
        assert first.loc[p, "gallery"] == gallery.path[j]
        assert bool(first.loc[p, "same_person"]) == (dist[rows.index(i), j] < threshold)
    html = (r / "search/report.html").read_text()
    assert "suspect #0 (copy).JPG" in html and "data:image/jpeg;base64" in html and "notes.txt" in html


def test_search_gallery_features_are_cached_by_content(pipeline, tmp_path):
    import pandas as pd

    r = pipeline / "results"
    gal = pd.read_csv(r / "data/gallery.csv")
    folder = tmp_path / "gallery"
    folder.mkdir()
    for i, p in enumerate(gal.path[:10]):
        shutil.copy(pipeline / p, folder / f"g{i:02d}.jpg")
    queries = tmp_path / "q"
    queries.mkdir()
    shutil.copy(pipeline / gal.path[20], queries / "q.jpg")
    _search(pipeline, f"search={{queries: '{queries}', gallery: '{folder}'}}")
    for i, p in enumerate(gal.path[10:12]):  # two more images: only they go through the C++ program
        shutil.copy(pipeline / p, folder / f"new{i}.jpg")
    _search(pipeline, f"search={{queries: '{queries}', gallery: '{folder}'}}")
    log = (r / "logs/search_features_gallery.0.log").read_text()
    assert "12 images: 10 from the feature cache, 2 new through the C++ program" in log
    assert len(pd.read_csv(r / "search/matches.csv")) == 10  # top 10 of a 12-image gallery
    (folder / "g00.jpg").unlink()  # removing one computes none
    _search(pipeline, f"search={{queries: '{queries}', gallery: '{folder}'}}")
    assert "11 images: 11 from the feature cache, 0 new" in (r / "logs/search_features_gallery.0.log").read_text()


def test_search_features_in_shards_append_to_one_store(pipeline, tmp_path):
    """search.shards 3 on a 9-image gallery (3 batches of infer.batch_size 4): three search_list jobs
    (joined by search_list_join) and three search_features jobs, each computing its own images into the
    one feature store; search_view joins their views in the listing's order, with the features the
    evaluation computed for the same images."""
    import pandas as pd

    from alignedreid.features.files import load_features
    from alignedreid.search.cache import load_view

    r = pipeline / "results"
    gal = pd.read_csv(r / "data/gallery.csv")
    picks = list(range(21, 30))  # images no other search test uses: none is cached yet
    folder, queries = tmp_path / "gallery", tmp_path / "q"
    folder.mkdir()
    queries.mkdir()
    for i in picks:
        shutil.copy(pipeline / gal.path[i], folder / f"s{i}.jpg")
    shutil.copy(pipeline / gal.path[20], queries / "q.jpg")  # not in the gallery: the shards race on no image
    out = _search(pipeline, f"search={{queries: '{queries}', gallery: '{folder}', shards: 3}}")
    for rule, jobs in [("search_list", 2 * 3), ("search_features", 2 * 3), ("search_list_join", 2), ("search_view", 2)]:
        assert len(re.findall(rf"^(?:local)?rule {rule}:$", out.stdout + out.stderr, re.M)) == jobs, rule  # queries and gallery, 3 shards each
    for k, n in enumerate([4, 4, 1]):
        log = (r / f"logs/search_features_gallery.{k}.log").read_text()
        assert f"shard {k + 1} of 3" in log and f"{n} images: 0 from the feature cache, {n} new" in log, log
    view = load_view(r / "search/gallery.view.npz")
    assert [os.path.basename(p) for p in view.path] == [f"s{i}.jpg" for i in picks]
    evaluated = load_features(r / "features/cpp/gallery.npz")
    np.testing.assert_allclose(view.features().global_, evaluated.global_[picks], atol=1e-5)
    np.testing.assert_allclose(view.features().local, evaluated.local[picks], atol=1e-5)
    assert not list((r / "search").glob("*.[0-9].view.npz"))  # the shards' views are temporary
    assert sorted(pd.read_csv(r / "search/matches.csv").gallery.map(os.path.basename)) == sorted(f"s{i}.jpg" for i in picks)  # top 10 of 9


def test_search_survives_an_awkward_folder(pipeline, tmp_path):
    """Every format a viewer shows is searched, with the features of the same pixels saved as PNG;
    every other entry (bomb, degenerate, FIFO, dangling and looping links, linked folder, hidden,
    duplicate, text) is listed with its reason; non-UTF-8 and newline names survive to matches.csv and
    the page; nothing is written outside results/."""
    import pandas as pd

    from alignedreid.data.manifests import CSV_ERRORS
    from alignedreid.search.cache import load_view
    from tests.awkward_files import SKIPPED, make_corpus

    folder = tmp_path / "crops"
    refs = make_corpus(folder)
    for i, (_name, ref) in enumerate(sorted(refs.items())):  # the references, searched beside
        shutil.copy(ref, folder / f"ref {i:02d}.png")
    before = {p for p in pipeline.iterdir()}
    _search(pipeline, f"search={{queries: '{folder}', top_k: 3}}")
    r = pipeline / "results/search"
    assert {p for p in pipeline.iterdir()} == before  # nothing beside results/ (no unsupported_image.*)
    q = load_view(r / "queries.view.npz").features()
    row = {os.path.basename(p): i for i, p in enumerate(q.path)}
    assert len(row) == 2 * len(refs)
    for i, name in enumerate(sorted(refs)):
        a, b = row[name], row[f"ref {i:02d}.png"]
        np.testing.assert_allclose(q.global_[a], q.global_[b], atol=1e-6, err_msg=name)
        np.testing.assert_allclose(q.local[a], q.local[b], atol=1e-6, err_msg=name)
    skipped = (r / "queries_skipped.txt").read_text(encoding="utf-8").splitlines()
    assert len(skipped) == len(SKIPPED)
    for name, word in SKIPPED.items():
        assert any(line.split("\t")[0].endswith(name) and word in line for line in skipped), name
    matches = pd.read_csv(r / "matches.csv", encoding_errors=CSV_ERRORS)
    assert {os.path.basename(p) for p in matches["query"]} == set(row)
    html = (r / "report.html").read_text(encoding="utf-8")
    assert "two\\nlines.png" in html and "caf\\xe9 \\xff.jpg" in html


def test_the_search_cache_is_keyed_by_the_bytes_decoded(pipeline, tmp_path):
    """An image replaced between the listing and the features is stored under the replacement's hash,
    never under the listed one; queries and gallery extracted at once keep each other's entries."""
    import pandas as pd

    from alignedreid.features.files import load_features
    from alignedreid.features.store import FeatureStore
    from alignedreid.search.cache import cached_features, key_rows, load_view
    from alignedreid.search.listing import list_images
    from alignedreid.serving.program_settings import ProgramSettings

    r = pipeline / "results"
    gal = pd.read_csv(r / "data/gallery.csv")
    folder = tmp_path / "f"
    folder.mkdir()
    shutil.copy(pipeline / gal.path[1], folder / "a.jpg")
    list_images(folder, tmp_path / "f.csv", tmp_path / "f_skipped.txt", "queries")
    listed = pd.read_csv(tmp_path / "f.csv").sha256[0]
    shutil.copy(pipeline / gal.path[2], folder / "a.jpg")  # replaced after the listing
    settings = ProgramSettings(batch=4, height=64, width=32, precision="fp32", hint="latency", flip=False, device_id=0)
    args = (r / "infer/bin/aligned_infer", r / "export/model.onnx", settings, 2, "float32")
    cache = tmp_path / "cache"
    cached_features(tmp_path / "f.csv", tmp_path / "f.npz", cache, *args)
    index = key_rows(FeatureStore(next(cache.iterdir())))
    assert listed not in index and len(index) == 1
    evaluated = load_features(r / "features/cpp/gallery.npz")
    np.testing.assert_allclose(load_view(tmp_path / "f.npz").features().global_[0], evaluated.global_[2], atol=1e-5)
    # two writers at once (queries and gallery, as two processes): both shards survive
    other = tmp_path / "g"
    other.mkdir()
    for i in range(3, 7):
        shutil.copy(pipeline / gal.path[i], other / f"{i}.jpg")
    list_images(other, tmp_path / "g.csv", tmp_path / "g_skipped.txt", "gallery")
    shutil.copy(pipeline / gal.path[7], folder / "b.jpg")
    list_images(folder, tmp_path / "f.csv", tmp_path / "f_skipped.txt", "queries")
    code = (
        "import sys; from alignedreid.search.cache import cached_features; from alignedreid.serving.program_settings import ProgramSettings; "
        "cached_features(sys.argv[1], sys.argv[2], sys.argv[3], *eval(sys.argv[4]))"
    )
    literal = repr(tuple(str(a) if isinstance(a, Path) else a for a in args))
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path / f"{s}.csv"), str(tmp_path / f"{s}2.npz"), str(cache), literal])
        for s in ("f", "g")
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    assert len(key_rows(FeatureStore(next(cache.iterdir())))) == 1 + 1 + 4
