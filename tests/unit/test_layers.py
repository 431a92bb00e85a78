"""The package's import rules (docs/architecture.md §2): every module lives in a folder, each folder
declares its layer (``LAYER`` in its ``__init__.py``), a module imports only from its own layer and
the layers below it, and what the Snakefile reads at parse time imports nothing heavy."""

import ast
import subprocess
import sys
from pathlib import Path

from alignedreid.foundation.code_closure import PACKAGE_ROOT, _module_name, imported_modules


def folder_layers() -> dict[str, int]:
    """{folder: LAYER} read from each sub-package's __init__.py (statically)."""
    layers = {}
    for init in sorted(PACKAGE_ROOT.glob("*/__init__.py")):
        for node in ast.parse(init.read_text()).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "LAYER" for t in node.targets):
                layers[init.parent.name] = ast.literal_eval(node.value)
        assert init.parent.name in layers, f"{init}: no LAYER = <n> (docs/architecture.md §2)"
    return layers


def _top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def crossings(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """'a -> b' for every import of a module from a higher layer."""
    bad = []
    for mod, deps in graph.items():
        if not _top(mod):
            continue
        for dep in deps:
            if _top(dep) and layers[_top(dep)] > layers[_top(mod)]:
                bad.append(f"{mod} -> {dep}")
    return sorted(bad)


def _graph() -> dict[str, set[str]]:
    return {_module_name(f): imported_modules(f) for f in PACKAGE_ROOT.rglob("*.py")}


def test_every_module_is_in_a_layer_folder_and_imports_go_downwards():
    layers = folder_layers()
    assert sorted(set(layers.values())) == [1, 2, 3, 4]
    flat = [p.name for p in PACKAGE_ROOT.glob("*.py") if p.name != "__init__.py"]
    assert flat == [], f"modules outside a layer folder: {flat}"
    assert crossings(_graph(), layers) == []


def test_the_check_catches_an_upward_import():
    layers, graph = folder_layers(), _graph()
    graph["alignedreid.data.loader"] = graph["alignedreid.data.loader"] | {"alignedreid.training.sampler"}  # an old layout
    graph["alignedreid.model.checkpoint"] = graph["alignedreid.model.checkpoint"] | {"alignedreid.training.steplog"}
    assert crossings(graph, layers) == [
        "alignedreid.data.loader -> alignedreid.training.sampler",
        "alignedreid.model.checkpoint -> alignedreid.training.steplog",
    ]


def test_no_private_name_is_imported_from_another_folder():
    found = []
    for f in PACKAGE_ROOT.rglob("*.py"):
        own = _top(_module_name(f))
        for node in ast.walk(ast.parse(f.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and (node.level > 1 or (node.module or "").startswith("alignedreid."))
                and any(a.name.startswith("_") for a in node.names)
            ):
                if node.level > 1 or _top(node.module or "") != own:
                    found.append(f"{f.relative_to(PACKAGE_ROOT)}: from {'.' * node.level}{node.module} import {[a.name for a in node.names]}")
    assert found == []


def test_what_the_snakefile_reads_at_parse_time_imports_nothing_heavy():
    """The Snakefile and common.smk import foundation.config, foundation.folders, foundation.code_closure
    and training (WEIGHT_CODE): only the standard library, PyYAML and jsonschema may load."""
    code = (
        "import sys; import alignedreid.foundation.config, alignedreid.foundation.folders, alignedreid.foundation.code_closure, "
        "alignedreid.training, alignedreid.data.spec, alignedreid.serving.program_settings; "
        "print(sorted(m for m in ('numpy', 'pandas', 'PIL', 'tqdm', 'mindspore', 'scipy', 'numba') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    assert imported_modules(PACKAGE_ROOT / "foundation" / "code_closure.py") == set()


def test_an_infer_cpp_job_imports_nothing_heavy():
    """Each shard's infer_cpp job only runs the C++ program (serving.cpp_run): NumPy, pandas and MindSpore
    would add 0.5 s or more to every shard's start (docs/architecture.md §1, "Shards")."""
    script = Path(__file__).resolve().parents[2] / "workflow" / "scripts" / "infer_cpp.py"
    imports = [line for line in script.read_text().splitlines() if line.startswith(("from ", "import "))]
    code = "; ".join(["import sys", *imports]) + (
        "; print(sorted(m for m in ('numpy', 'pandas', 'PIL', 'tqdm', 'mindspore', 'scipy', 'numba') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
