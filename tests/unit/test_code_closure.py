"""Each rule's code inputs are the import closure of its script (alignedreid.foundation.code_closure): checked
against the rules' text and against what Python really imports."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from alignedreid.foundation.code_closure import PACKAGE_ROOT, imported_modules, package_closure, relative_names

REPO = Path(__file__).resolve().parents[2]
RULES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
SCRIPTS = REPO / "workflow" / "scripts"


def rule_blocks():
    """(rule name, its text) of every rule in workflow/rules."""
    for f in RULES:
        parts = re.split(r"(?m)^\s*rule (\w+):\n", f.read_text())
        yield from zip(parts[1::2], parts[2::2])


def test_every_rule_with_a_script_declares_that_scripts_code():
    seen = 0
    for name, body in rule_blocks():
        script = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+\.py)"', body)
        if not script:
            continue
        seen += 1
        if name == "train":  # the weight-determining modules only (training.WEIGHT_CODE)
            assert "code=training_code()," in body
            continue
        code = re.search(r"code=script_code\(([^)]*)\)", body)
        assert code, f"rule {name}: no code=script_code(...) param"
        assert code.group(1).split(",")[0].strip().strip('"') == script.group(1), f"rule {name}: code of another script"
        params = body.split("params:")[1] if "params:" in body else ""
        assert code.group(0) in params, f"rule {name}: the code identity is a param (a file input would re-run on any byte)"
    assert seen >= 18


def _python_imports(script: Path) -> set[str]:
    """The package modules Python loads when it runs the script's module-level imports."""
    tree = ast.parse(script.read_text())
    imports = "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    code = imports + "\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m == 'alignedreid' or m.startswith('alignedreid.'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO, timeout=300)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _files(modules) -> set[str]:
    out = set()
    for m in modules:
        rel = PACKAGE_ROOT.joinpath(*m.split(".")[1:])
        out.add(str(rel.parent / f"{rel.name}.py" if m != "alignedreid" and Path(f"{rel}.py").is_file() else rel / "__init__.py"))
    return out


def missing_from(declared, script: Path, loaded: set[str]) -> set[str]:
    """Package modules Python loaded for ``script`` that ``declared`` (a rule's code list) lacks."""
    return _files(loaded) - {str(Path(d)) for d in declared}


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.py")))
def test_closure_holds_every_module_python_loads(script):
    """Static closure >= what Python imports at the script's module level (the closure also
    follows imports inside functions, which run later)."""
    path = SCRIPTS / script
    declared = [str(f) for f in package_closure(path)]
    assert missing_from(declared, path, _python_imports(path)) == set()


def test_the_check_fails_when_a_rule_list_misses_a_module():
    path = SCRIPTS / "parity.py"
    loaded = _python_imports(path)
    declared = [str(f) for f in package_closure(path) if not str(f).endswith("evaluation/distance.py")]
    assert missing_from(declared, path, loaded) == {str(PACKAGE_ROOT / "evaluation" / "distance.py")}


def test_closure_follows_lazy_relative_and_package_imports(tmp_path):
    entry = tmp_path / "stage.py"
    entry.write_text(
        "from alignedreid.evaluation import rank\n\ndef later():\n    from alignedreid.data import sources\n    import alignedreid.features.parity\n"
    )
    names = relative_names(package_closure(entry))
    for expected in (
        "__init__.py",
        "evaluation/__init__.py",
        "evaluation/ranking.py",
        "data/sources.py",
        "data/market_style.py",
        "features/parity.py",
    ):
        assert expected in names
    assert "training/loop.py" not in names
    # a package's lazy exports: one module of evaluation/ does not bring the others
    only = tmp_path / "one.py"
    only.write_text("from alignedreid.evaluation.distance import global_distance\n")
    assert {n for n in relative_names(package_closure(only)) if n.startswith("evaluation/")} == {"evaluation/__init__.py", "evaluation/distance.py"}
    # relative imports resolve against the importing module's package
    assert "alignedreid.evaluation.distance" in imported_modules(PACKAGE_ROOT / "evaluation" / "rerank.py")


def test_training_code_is_classified_and_holds_only_what_determines_the_weights():
    from alignedreid.foundation.code_closure import RESULT_NEUTRAL, result_code
    from alignedreid.training import ORCHESTRATION_CODE, WEIGHT_CODE

    closure = set(relative_names(result_code("training/worker.py", "training/slurm_node.py", SCRIPTS / "train.py")))
    # every module the training process runs is either weight-determining or orchestration: a new one must be classified
    assert closure == set(WEIGHT_CODE) | set(ORCHESTRATION_CODE), closure ^ (set(WEIGHT_CODE) | set(ORCHESTRATION_CODE))
    for needed in ("training/loop.py", "training/losses.py", "training/step.py", "data/sampler.py", "data/loader.py", "model/network.py"):
        assert needed in WEIGHT_CODE
    # diagnostics and helpers do not move the weights: editing them keeps training and its checkpoints
    for unused in (
        "training/quick_eval.py",
        "evaluation/ranking.py",
        "features/python_ref.py",
        "report/page.py",
        "foundation/errors.py",
        "foundation/io_utils.py",
    ):
        assert unused not in closure | set(WEIGHT_CODE)
    assert set(RESULT_NEUTRAL) & set(WEIGHT_CODE) == set()


def test_closure_reads_the_workflows_own_package_copy(tmp_path):
    """The Snakefile passes its own src/alignedreid: a copied workflow declares (and re-runs on) its copy's files."""
    import shutil

    copy = tmp_path / "src" / "alignedreid"
    shutil.copytree(PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    files = package_closure(SCRIPTS / "evaluate.py", root=copy)
    assert files and all(str(f).startswith(str(copy.resolve())) for f in files)
    assert relative_names(files, root=copy) == relative_names(package_closure(SCRIPTS / "evaluate.py"))


def test_a_file_edited_in_the_same_process_is_read_again(tmp_path):
    """Each file is parsed once per process (the Snakefile asks for 18 closures over the same modules),
    keyed by its modification time and size: an edit is seen, what did not change is not parsed again."""
    import os

    from alignedreid.foundation import code_closure

    f = tmp_path / "stage.py"
    f.write_text("import alignedreid.evaluation.ranking\n")
    before, ident = imported_modules(f), code_closure.file_identity(f)
    parses = code_closure._facts.cache_info().misses
    assert imported_modules(f) == before and code_closure.file_identity(f) == ident
    assert code_closure._facts.cache_info().misses == parses  # answered from the one parse
    f.write_text("import alignedreid.evaluation.rerank\n")
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # a later time even on a coarse clock
    assert "alignedreid.evaluation.rerank" in imported_modules(f) and "alignedreid.evaluation.ranking" not in imported_modules(f)
    assert code_closure.file_identity(f) != ident


def test_an_import_added_in_the_same_process_joins_the_closure(tmp_path):
    entry = tmp_path / "stage.py"
    entry.write_text("import alignedreid.evaluation.distance\n")
    assert "evaluation/rerank.py" not in relative_names(package_closure(entry))
    entry.write_text("import alignedreid.evaluation.distance\nimport alignedreid.evaluation.rerank\n")
    st = entry.stat()
    os.utime(entry, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert "evaluation/rerank.py" in relative_names(package_closure(entry))
