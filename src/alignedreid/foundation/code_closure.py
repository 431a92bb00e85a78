"""Which package modules a piece of code runs: the import closure of a file, found statically.

The rules declare the package modules their script runs as inputs (``code``), so that editing
one re-runs the rule (Snakemake's code trigger sees only the rule's own script); the training
fingerprint hashes the training worker's modules. Both lists come from here: every ``import`` and
``from ... import`` of the file -- at the top or inside a function (the lazy imports run too) --
that names a module of this package, followed recursively. Importing a sub-module runs its
parent packages' ``__init__.py``, so those count as well; a package's attributes that are loaded
on first use are declared in its ``_LAZY_EXPORTS`` (evaluation/__init__.py) and followed to their
sub-module. Standard library only (ast): the
Snakefile calls this at parse time. docs/architecture.md §2.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "alignedreid"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]

# Modules whose edits cannot change any stage's output files: error types (messages), the atomic
# file-writing and hashing helpers, stage logging, the stall watchdog and this module. They are left
# out of every rule's code identity (an edit re-runs nothing); an edit that does change outputs
# through them asks for --forcerun. docs/architecture.md §2, "What an edit re-runs".
RESULT_NEUTRAL = ("foundation/code_closure.py", "foundation/errors.py", "foundation/io_utils.py", "foundation/runlog.py", "training/watchdog.py")


def _module_file(name: str, root: Path = PACKAGE_ROOT) -> Path | None:
    """The file of package module ``name`` (dotted, starting with the package) under ``root``, or None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path, root: Path = PACKAGE_ROOT) -> str | None:
    """The dotted name of a file inside the package at ``root`` (None outside it)."""
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        return None
    parts = [PACKAGE, *rel.with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def lazy_exports(package: str, root: Path = PACKAGE_ROOT) -> dict[str, str]:
    """A package's attributes loaded on first use: the ``_LAZY_EXPORTS`` dict literal of its
    ``__init__.py`` (attribute -> sub-module), {} when it has none."""
    f = _module_file(package, root)
    if f is None or f.name != "__init__.py":
        return {}
    for node in ast.parse(f.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_LAZY_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def _from_import(base: str, name: str, root: Path) -> str:
    """The module ``from base import name`` loads: base.name when that is a module (or a lazy
    export's sub-module), else base itself (an attribute)."""
    if _module_file(f"{base}.{name}", root):
        return f"{base}.{name}"
    lazy = lazy_exports(base, root).get(name)
    return f"{base}.{lazy}" if lazy else base


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _stamp(path: Path) -> tuple[int, int]:
    """(mtime in ns, size) of a file: the per-file caches below are keyed by it, so an edited file is read again."""
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def imported_modules(path: Path, root: Path = PACKAGE_ROOT) -> set[str]:
    """Dotted names of the package modules ``path`` imports directly (with their parent packages),
    the package's files read under ``root``. Each file is parsed once per process (and again when it
    changes): every rule's closure reaches most of the same modules, and the Snakefile asks for 18."""
    path = Path(path).resolve()  # one cache entry per file, however it is named
    return set(_imported_modules(path, Path(root), *_stamp(path)))


@cache
def _imported_modules(path: Path, root: Path, mtime_ns: int, size: int) -> frozenset[str]:
    imports = _facts(path, mtime_ns, size)[0]
    own = _module_name(path, root)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for is_from, level, module, imported in imports:
        if not is_from:
            names = list(imported)
        else:
            if level:  # relative: resolved against this module's package
                if own is None:
                    continue
                anchor = own.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (level - 1)]
                base = ".".join(anchor + ([module] if module else []))
            else:
                base = module or ""
            names = [_from_import(base, a, root) for a in imported]
        for name in names:
            for part in _with_parents(name):
                if _module_file(part, root):
                    found.add(part)
    return frozenset(found)


def _closure_of(path: Path, root: Path) -> frozenset[Path]:
    # not cached itself: each module's imports are (imported_modules), so an edit that adds or drops an
    # import is followed in the same process
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        for name in imported_modules(current, root):
            f = _module_file(name, root)
            if f is not None and f not in seen:
                seen.add(f)
                todo.append(f)
    own = _module_name(path, root)
    if own is not None:  # the file itself, when it is a package module
        seen.update(_module_file(p, root) for p in _with_parents(own) if _module_file(p, root))
    return frozenset(seen)


def package_closure(*entries, root=PACKAGE_ROOT) -> list[Path]:
    """Every package module the files ``entries`` run, sorted: their imports, followed recursively.
    An entry is a path, or a path relative to the package root (e.g. "training/worker.py").
    ``root`` is the package folder whose files are meant (default: this imported package; the
    Snakefile passes the workflow's own src/alignedreid)."""
    root = Path(root).resolve()
    files: set[Path] = set()
    for entry in entries:
        p = Path(entry)
        p = p if p.is_absolute() or p.exists() else root / p
        if not p.is_file():
            raise FileNotFoundError(f"code closure: {entry} is not a file (relative names are read under {root})")
        files |= _closure_of(p.resolve(), root)
    return sorted(files)


def relative_names(files, root=PACKAGE_ROOT) -> tuple[str, ...]:
    """Package-relative names ("training/job.py") of module files."""
    return tuple(str(Path(f).relative_to(Path(root).resolve())) for f in files)


# ---- code identity: what a module means, not its bytes ------------------------------------------


def _drop_docstrings(tree: ast.AST) -> ast.AST:
    """``tree`` without the docstrings of its module, classes and functions (an empty body keeps a pass)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@cache
def _facts(path: Path, mtime_ns: int, size: int) -> tuple[tuple, str, bool]:
    """What the closure and the identities need of one file, from one parse (cached per process and
    per version of the file): its import statements as (from-import?, level, module, names), the
    sha256 of its meaning, and whether its body is only a layer declaration."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imports = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports.append((False, 0, None, tuple(a.name for a in node.names)))
        elif isinstance(node, ast.ImportFrom):
            imports.append((True, node.level, node.module, tuple(a.name for a in node.names)))
    tree = _drop_docstrings(tree)
    # ast.dump leaves out line and column numbers: comments, blank lines, formatting and docstrings
    # do not reach the hash; any change of what the code does (names, literals, statements) does
    identity = hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()
    marker = all(
        isinstance(n, ast.Pass) or (isinstance(n, ast.Assign) and [getattr(x, "id", None) for x in n.targets] == ["LAYER"]) for n in tree.body
    )
    return tuple(imports), identity, marker


def file_identity(path) -> str:
    """sha256 of the meaning of one Python file: its syntax tree without docstrings, line numbers,
    comments or formatting."""
    p = Path(path).resolve()
    return _facts(p, *_stamp(p))[1]


def code_identity(files, root=PACKAGE_ROOT) -> str:
    """One hash of the meaning of ``files`` (paths, named as :func:`module_identities` says), order-independent."""
    root = Path(root).resolve()
    h = hashlib.sha256()
    for name, ident in sorted(module_identities(files, root).items()):
        h.update(f"{name}:{ident}\n".encode())
    return h.hexdigest()


def module_identities(files, root=PACKAGE_ROOT) -> dict[str, str]:
    """{name: file_identity} of ``files``: package files named relative to ``root``, others (the
    workflow's scripts) relative to the repository two levels above it ("workflow/scripts/export.py",
    never just "serving/export.py", which would collide with the package's export.py)."""
    root = Path(root).resolve()
    out = {}
    for f in map(Path, files):
        f = f.resolve()
        if f.is_relative_to(root):
            name = str(f.relative_to(root))
        elif f.is_relative_to(root.parents[1]):
            name = "//" + str(f.relative_to(root.parents[1]))
        else:
            name = str(f)
        out[name] = file_identity(f)
    return out


def rule_code_files(script, *launched, package=True, root=PACKAGE_ROOT) -> list[Path]:
    """The files a rule's code identity hashes: its script ``script`` (a path) and, unless
    ``package=False``, the result-changing package modules it runs (:func:`result_code` of the script
    and of each module in ``launched``). The Snakefile's ``script_code`` and edit_cost use this."""
    script = Path(script)
    return [script, *(result_code(script, *launched, root=root) if package else [])]


def is_layer_marker(path) -> bool:
    """Whether ``path`` is a package ``__init__.py`` that only declares its folder's layer (a docstring and
    ``LAYER = <n>``, docs/architecture.md §2): it cannot change an output, like RESULT_NEUTRAL."""
    path = Path(path)
    if path.name != "__init__.py":
        return False
    path = path.resolve()
    return _facts(path, *_stamp(path))[2]


def result_code(*entries, root=PACKAGE_ROOT) -> list[Path]:
    """The package modules of ``entries``' closure that can change results: package_closure without
    RESULT_NEUTRAL and the layer markers."""
    root = Path(root).resolve()
    neutral = {root / n for n in RESULT_NEUTRAL}
    return [f for f in package_closure(*entries, root=root) if f not in neutral and not is_layer_marker(f)]
