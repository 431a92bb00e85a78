import hashlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from alignedreid.data.prepare import prepare_dataset
from alignedreid.data.spec import SyntheticSpec as _Spec
from alignedreid.data.synthetic import generate
from alignedreid.foundation.config import section_defaults
from alignedreid.foundation.errors import ConfigError
from tests.conftest import dataset_section


def SyntheticSpec(**keys):  # noqa: N802 (the spec with the schema's defaults for the keys not given)
    return _Spec(**{**section_defaults("dataset")["synthetic"], **keys})


SMALL = dict(seed=3, train_ids=4, test_ids=3, images_per_id=5, cameras=3, queries_per_id=2, distractors=3, junk=2)


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.jpg")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate(SyntheticSpec(**SMALL), tmp_path / "a")
    b = generate(SyntheticSpec(**SMALL), tmp_path / "b")
    c = generate(SyntheticSpec(**{**SMALL, "seed": 4}), tmp_path / "c")
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_goes_through_market_checks(tmp_path):
    spec = SyntheticSpec(**SMALL)
    summary = prepare_dataset(dataset_section({"source": "synthetic", "synthetic": SMALL}), tmp_path / "out", work_dir=tmp_path)
    exp = spec.expected_counts()
    assert summary["splits"]["train"]["images"] == exp["train"] == 20
    assert summary["splits"]["gallery"]["images"] == exp["gallery"] == 3 * 3 + 3 + 2
    g = pd.read_csv(tmp_path / "out" / "gallery.csv")
    q = pd.read_csv(tmp_path / "out" / "query.csv")
    assert (g.pid == -1).sum() == 2 and (g.pid == 0).sum() == 3
    # every query has a gallery match from another camera
    for _, row in q.iterrows():
        assert ((g.pid == row.pid) & (g.camid != row.camid)).any()
    assert set(q.pid) == set(g.pid[g.pid > 0])
    assert not set(q.pid) & set(pd.read_csv(tmp_path / "out" / "train.csv").pid)


def test_identity_is_learnable_across_cameras(tmp_path):
    """Nearest neighbour on tiny per-image-standardised thumbnails, searching only images from
    other cameras, finds the same identity far above chance: identity signal survives the
    camera changes (and the background alone cannot give it away)."""
    root = generate(SyntheticSpec(**{**SMALL, "train_ids": 10, "images_per_id": 6}), tmp_path / "s")
    feats, pids, cams = [], [], []
    for p in sorted((root / "bounding_box_train").glob("*.jpg")):
        a = np.asarray(Image.open(p).convert("RGB").resize((8, 16)), dtype=np.float32)
        a = (a - a.mean((0, 1))) / (a.std((0, 1)) + 1e-6)
        feats.append(a.ravel())
        pids.append(int(p.name[:4]))
        cams.append(int(p.name[6]))
    f, pids, cams = np.array(feats), np.array(pids), np.array(cams)
    d = ((f[:, None] - f[None]) ** 2).sum(-1)
    d[cams[:, None] == cams[None]] = np.inf
    hits = (pids[d.argmin(1)] == pids).mean()
    chance = 1 / 10
    assert hits > 3 * chance, hits
    print("cross-camera 1-NN hit rate", hits)


@pytest.mark.parametrize("bad", [{"cameras": 1}, {"images_per_id": 2, "queries_per_id": 2}, {"cameras": 12}, {"train_ids": 1}])
def test_bad_spec(bad):
    with pytest.raises(ConfigError, match="dataset.synthetic"):
        SyntheticSpec(**{**SMALL, **bad})


def test_exact_counts_at_market_scale_are_planned_exactly():
    from collections import Counter

    from alignedreid.data.synthetic import plan_images

    spec = SyntheticSpec(
        train_ids=751, test_ids=750, cameras=6, train_images=12936, query_images=3368, gallery_images=13120, distractors=2793, junk=3819
    )
    plan = plan_images(spec)
    assert Counter(p[0] for p in plan) == {"train": 12936, "query": 3368, "gallery": 19732}
    assert spec.expected_counts() == {"train": 12936, "train_ids": 751, "query": 3368, "gallery": 19732}
    assert len({(p[1], p[2], p[3]) for p in plan}) == len(plan)  # every file name distinct
    queries = Counter((p[1], p[2]) for p in plan if p[0] == "query")
    assert max(queries.values()) == 1  # at most one query per identity and camera
    assert {p[1] for p in plan if p[0] == "query"} <= {p[1] for p in plan if p[0] == "gallery"}
    with pytest.raises(ConfigError, match="query_images must be between test_ids and test_ids x cameras"):
        SyntheticSpec(test_ids=2, cameras=3, query_images=7)


def test_exact_counts_go_through_the_market_checks(tmp_path):
    cfg = dict(SMALL, train_images=11, query_images=4, gallery_images=7)
    summary = prepare_dataset(dataset_section({"source": "synthetic", "synthetic": cfg}), tmp_path / "out", work_dir=tmp_path)
    s = summary["splits"]
    assert (s["train"]["images"], s["query"]["images"], s["gallery"]["images"]) == (11, 4, 7 + 3 + 2)


@pytest.mark.parametrize("layout", ["market1501", "dukemtmc", "cuhk03", "msmt17", "folder"])
def test_every_layout_reads_back_through_its_source(tmp_path, layout):
    syn = {**SMALL, "layout": layout, "junk": SMALL["junk"] if layout == "market1501" else 0, "images_per_id": 12}
    summary = prepare_dataset(dataset_section({"source": "synthetic", "synthetic": syn}), tmp_path / "out", work_dir=tmp_path)
    exp = SyntheticSpec(**syn).expected_counts()
    assert {s: summary["splits"][s]["images"] for s in ("train", "query", "gallery")} == {s: exp[s] for s in ("train", "query", "gallery")}
    assert summary["source"] == "synthetic" and summary["synthetic_layout"] == layout
    train, query, gallery = (pd.read_csv(tmp_path / "out" / f"{s}.csv") for s in ("train", "query", "gallery"))
    assert train.pid.nunique() == SMALL["train_ids"] and query.pid.nunique() == SMALL["test_ids"]
    gallery_only = set(gallery.pid) - set(query.pid)
    if layout == "market1501":
        assert gallery_only == {0, -1}
    else:  # distractors are identities seen only in the gallery, one image each
        assert len(gallery_only) == SMALL["distractors"] and (gallery.pid == -1).sum() == 0
    if layout == "msmt17":
        assert (tmp_path / "synthetic" / "MSMT17_V1" / "list_val.txt").read_text().count("\n") == SMALL["train_ids"]
