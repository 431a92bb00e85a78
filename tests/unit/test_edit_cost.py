"""Code identity by meaning (code_closure.file_identity) and the edit-cost table (alignedreid.devtools.edit_cost,
docs/edit_cost.md): which rules an edit of each module re-runs."""

from pathlib import Path

import pytest

from alignedreid.devtools.edit_cost import markdown, rule_code, table
from alignedreid.foundation.code_closure import PACKAGE_ROOT, code_identity, file_identity

REPO = Path(__file__).resolve().parents[2]
SOURCE = '''"""Module doc."""

import math


def area(r):
    """Circle area."""
    return math.pi * r**2  # squared


class Box:
    """Only a docstring."""
'''


def test_identity_ignores_comments_docstrings_and_formatting(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(SOURCE)
    base = file_identity(f)
    same = [
        SOURCE + "\n# a trailing comment\n",
        SOURCE.replace('"""Circle area."""', '"""Area of a circle of radius r (reworded)."""'),
        SOURCE.replace("return math.pi * r**2  # squared", "return (\n        math.pi * r ** 2\n    )"),
        SOURCE.replace('"""Module doc."""\n', "# no docstring at all\n"),
        SOURCE.replace('    """Only a docstring."""\n', "    pass\n"),
    ]
    for text in same:
        f.write_text(text)
        assert file_identity(f) == base, text
    for text in (SOURCE.replace("r**2", "r**3"), SOURCE + "\nPROBE = 1\n", SOURCE.replace("def area(r)", "def area(radius)")):
        f.write_text(text)
        assert file_identity(f) != base, text


def test_code_identity_is_order_independent_and_names_package_files():
    a, b = PACKAGE_ROOT / "foundation/errors.py", PACKAGE_ROOT / "foundation/contracts.py"
    assert code_identity([a, b]) == code_identity([b, a]) != code_identity([a])


def test_stages_depend_on_what_they_read():
    codes = rule_code()
    assert codes["build_infer"] == {"workflow/scripts/build_infer.py"}  # the C++ build: sources and toolchain, no package module
    for rule, files in codes.items():
        for neutral in ("foundation/errors.py", "foundation/io_utils.py", "foundation/runlog.py"):
            assert neutral not in files, (rule, neutral)
    assert "training/quick_eval.py" in codes["quick_eval"] and "training/quick_eval.py" not in codes["train"]
    assert not {m for m in codes["prepare_dataset"] if m.startswith(("evaluation/", "training/", "features/"))}


@pytest.mark.slow
def test_the_issue_rows():
    """The rows users asked about: diagnostics never re-run training, data preparation or the C++ build;
    the network and the losses still do."""
    rows = {m: set(reruns) for m, _, reruns in table()}
    heavy = {"train", "prepare_dataset", "build_infer"}
    for m in ("foundation/errors.py", "foundation/io_utils.py", "report/page.py", "features/python_ref.py", "training/quick_eval.py"):
        assert not rows[m] & heavy, (m, rows[m])
    for m in [m for m in rows if m.startswith("evaluation/")]:
        assert not rows[m] & heavy, (m, rows[m])
    assert rows["foundation/errors.py"] == rows["foundation/io_utils.py"] == set()
    assert rows["evaluation/rerank.py"] == {"evaluate", "report"}  # search ranks without re-ranking
    for m in ("model/network.py", "training/losses.py"):
        assert "train" in rows[m] and "report" in rows[m]


@pytest.mark.slow
def test_docs_table_is_current():
    committed = (REPO / "docs" / "edit_cost.md").read_text()
    assert committed == markdown(), "docs/edit_cost.md is stale: python -m alignedreid.devtools.edit_cost > docs/edit_cost.md"


def test_a_script_and_a_package_module_of_the_same_name_both_count():
    """workflow/scripts/export.py and src/alignedreid/export.py are two files of one identity."""
    from alignedreid.foundation.code_closure import module_identities

    names = module_identities([REPO / "workflow/scripts/export.py", PACKAGE_ROOT / "serving/export.py"])
    assert set(names) == {"//workflow/scripts/export.py", "serving/export.py"}
