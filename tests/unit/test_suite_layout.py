"""The unit tests mirror the package: tests/unit/<sub-package>/ for each sub-package, and every
module is imported by a test of its own (not only reached through a stage function)."""

from pathlib import Path

from alignedreid.foundation.code_closure import PACKAGE_ROOT, _module_name, imported_modules

UNIT = Path(__file__).resolve().parent


def test_unit_test_folders_are_package_folders():
    sub_packages = {p.parent.name for p in PACKAGE_ROOT.glob("*/__init__.py")}
    folders = {p.name for p in UNIT.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= sub_packages, f"tests/unit/ folders without a package folder: {sorted(folders - sub_packages)}"


def test_every_module_is_imported_by_a_test():
    tests = Path(__file__).resolve().parents[1]
    imported = set().union(*(imported_modules(f) for f in tests.rglob("test_*.py")))
    modules = {_module_name(f) for f in PACKAGE_ROOT.rglob("*.py") if f.name != "__init__.py"}
    assert sorted(modules - imported) == []


def test_every_module_reading_the_shared_run_is_in_its_worker_group():
    """A module that takes the session's ``pipeline`` fixture runs on the worker that made the run
    (tests/conftest.SHARED_RUN_MODULES); one left out would make that run again on another worker."""
    import ast

    from tests.conftest import SHARED_RUN_MODULES, worker_group

    tests = Path(__file__).resolve().parents[1]
    readers = set()
    for f in tests.rglob("test_*.py"):
        tree = ast.parse(f.read_text())
        takes = any(isinstance(n, ast.FunctionDef) and "pipeline" in [a.arg for a in n.args.args] for n in ast.walk(tree))
        asks = any(
            isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "getfixturevalue" and [ast.literal_eval(a) for a in n.args] == ["pipeline"]
            for n in ast.walk(tree)
        )
        if takes or asks:
            readers.add(f.relative_to(tests.parent).as_posix())
    assert readers and readers <= set(SHARED_RUN_MODULES), sorted(readers - set(SHARED_RUN_MODULES))
    assert {worker_group(f"{m}::t") for m in SHARED_RUN_MODULES} == {"pipeline"}
