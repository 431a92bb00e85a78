"""The package's import rules (docs/architecture.md §2): a module imports only from its own layer
and the layers below it, and training/__init__.py (read by the Snakefile) imports nothing heavy."""

from alignedreid.code_closure import PACKAGE_ROOT, _module_name, imported_modules

# bottom to top; a module's layer is that of its top-level name (a sub-package counts as a whole)
LAYERS = [
    {"errors", "contracts", "io_utils", "cpu_runtime", "runlog", "code_closure", "folders"},
    {"data", "evaluation", "model", "checkpoint"},
    {"config", "training", "features", "export", "pretrained", "download", "quantize", "device_check"},
    {"search", "report", "edit_cost"},
]


def _top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(top: str) -> int:
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"module {top!r} is in no layer of this test: add it to LAYERS and to docs/architecture.md §2")


def crossings(graph: dict[str, set[str]]) -> list[str]:
    """'a -> b' for every import of a module from a higher layer."""
    bad = []
    for mod, deps in graph.items():
        if not _top(mod):
            continue
        for dep in deps:
            if _top(dep) and _layer(_top(dep)) > _layer(_top(mod)):
                bad.append(f"{mod} -> {dep}")
    return sorted(bad)


def _graph() -> dict[str, set[str]]:
    return {_module_name(f): imported_modules(f) for f in PACKAGE_ROOT.rglob("*.py")}


def test_every_module_has_a_layer_and_imports_go_downwards():
    graph = _graph()
    for mod in graph:
        if _top(mod):
            _layer(_top(mod))
    assert crossings(graph) == []


def test_the_check_catches_an_upward_import():
    graph = _graph()
    graph["alignedreid.data.loader"] = graph["alignedreid.data.loader"] | {"alignedreid.training.sampler"}  # the old layout
    graph["alignedreid.checkpoint"] = graph["alignedreid.checkpoint"] | {"alignedreid.training.steplog"}
    assert crossings(graph) == ["alignedreid.checkpoint -> alignedreid.training.steplog", "alignedreid.data.loader -> alignedreid.training.sampler"]


def test_training_package_init_imports_nothing_heavy():
    assert imported_modules(PACKAGE_ROOT / "training" / "__init__.py") <= {"alignedreid", "alignedreid.code_closure"}
    assert imported_modules(PACKAGE_ROOT / "code_closure.py") == set()
