"""The cost of an edit: for each package module and workflow script, the rules whose code identity
holds it and what an edit of its meaning re-runs on the demo DAG (those rules and everything after
them). Generated from the code -- each rule's ``code=script_code(...)`` / ``code=training_code()``
param in workflow/rules, evaluated with code_closure, and Snakemake's rule graph of the default
config -- into docs/edit_cost.md; a test keeps that file current and checks rows against real edits.

    python -m alignedreid.devtools.edit_cost > docs/edit_cost.md

docs/architecture.md §2, "What an edit re-runs".
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ..foundation.code_closure import PACKAGE_ROOT, RESULT_NEUTRAL, rule_code_files
from ..training import WEIGHT_CODE

REPO = PACKAGE_ROOT.parents[1]
RULE_HEAD = re.compile(r"^\s*(?:rule (\w+):|use rule (\w+) as (\w+) with:)\s*$", re.M)
CODE_PARAM = re.compile(r"code=(script_code\((.*?)\)|training_code\(\)),\s*$", re.M)


def _names(files, root: Path) -> set[str]:
    out = set()
    for f in files:
        f = Path(f).resolve()
        try:
            out.add(str(f.relative_to(root)))
        except ValueError:
            out.add(f"workflow/scripts/{f.name}")
    return out


def rule_code(repo: Path = REPO) -> dict[str, set[str]]:
    """{rule: the package modules (relative to src/alignedreid) and workflow scripts its code identity hashes}."""
    pkg = (repo / "src" / "alignedreid").resolve()
    scripts = repo / "workflow" / "scripts"

    def script_code(script, *launched, package=True):
        return _names(rule_code_files(scripts / script, *launched, package=package, root=pkg), pkg)

    out: dict[str, set[str]] = {}
    for name, base, body in _blocks(repo):
        m = CODE_PARAM.search(body)
        if m is None:
            if base:  # use rule ... with: inherits the code param of the rule it reuses
                out[name] = set(out.get(base, set()))
            continue
        if m.group(1) == "training_code()":
            out[name] = set(WEIGHT_CODE)
        else:
            out[name] = eval(f"script_code({m.group(2)})", {"script_code": script_code})  # literal arguments of a rule file
    return out


def rule_graph(repo: Path = REPO, target: str = "results/report.html") -> dict[str, set[str]]:
    """{rule: rules that read its outputs} of the demo DAG (default config), from ``snakemake --rulegraph``."""
    exe = Path(sys.executable).with_name("snakemake")
    dot = subprocess.run(
        [str(exe), "--rulegraph", "dot", target, "--cores", "1", "--nolock"], cwd=repo, capture_output=True, text=True, check=True, timeout=300
    ).stdout
    labels = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)"', dot, re.M))
    after: dict[str, set[str]] = {name: set() for name in labels.values()}
    for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M):
        after[labels[a]].add(labels[b])  # an edge points from the producing rule to the consuming one
    return after


def _blocks(repo: Path):
    """(rule name, the rule a ``use rule`` reuses or None, its text) of every rule in workflow/rules."""
    for smk in sorted((repo / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        heads = list(RULE_HEAD.finditer(text))
        for i, head in enumerate(heads):
            body = text[head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
            yield head.group(1) or head.group(3), head.group(2), body


def _section(body: str, name: str) -> str:
    m = re.search(rf"^(\s+){name}:\n(.*?)(?=^\1\w+:|\Z)", body, re.S | re.M)
    return m.group(2) if m else ""


def temporary_readers(repo: Path = REPO) -> dict[str, set[str]]:
    """{rule with temporary outputs (removed once read): the rules that read them}. Such a rule runs
    again whenever one of its readers does."""
    made = {}
    for name, _, body in _blocks(repo):
        out = _section(body, "output")
        paths = re.findall(r'temp\((?:directory\()?f?"([^"]+)"', out)
        if "infer_input_output()" in out:
            paths.append("infer_input_path()")
        if paths:
            made[name] = paths
    readers: dict[str, set[str]] = {name: set() for name in made}
    for name, _, body in _blocks(repo):
        inp = _section(body, "input").replace("{{", "{").replace("}}", "}")  # expand()'s escaped wildcards
        for maker, paths in made.items():
            if any(p in inp for p in paths):
                readers[maker].add(name)
    return readers


def downstream(rules: set[str], after: dict[str, set[str]], temporary: dict[str, set[str]] | None = None) -> set[str]:
    """``rules`` of the DAG, every rule after them, and the rules whose temporary outputs a re-run
    rule reads (``temporary``: maker -> readers; they run again to make them)."""
    temporary = temporary or {}
    todo = [r for r in rules if r in after]
    seen = set(todo)
    while todo:
        r = todo.pop()
        for nxt in after[r] | {maker for maker, readers in temporary.items() if r in readers and maker in after}:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def table(repo: Path = REPO) -> list[tuple[str, list[str], list[str]]]:
    """(module, rules whose code holds it, rules an edit re-runs on the demo DAG in DAG order) for every
    package module and workflow script."""
    codes = rule_code(repo)
    after = rule_graph(repo)
    temporary = temporary_readers(repo)
    order = _topological(after)
    pkg = repo / "src" / "alignedreid"
    modules = sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*.py") if "__pycache__" not in p.parts)
    modules += sorted(f"workflow/scripts/{p.name}" for p in (repo / "workflow" / "scripts").glob("*.py"))
    rows = []
    for m in modules:
        direct = sorted(r for r, files in codes.items() if m in files)
        reruns = downstream(set(direct), after, temporary)
        # rules outside the demo DAG (search, quantize, ...) re-run when their target is asked for
        rows.append((m, direct, [r for r in order if r in reruns] + [f"{r}*" for r in direct if r not in after]))
    return rows


def _topological(after: dict[str, set[str]]) -> list[str]:
    indeg = {r: 0 for r in after}
    for nxt in after.values():
        for r in nxt:
            indeg[r] += 1
    ready = sorted(r for r, d in indeg.items() if d == 0)
    out = []
    while ready:
        r = ready.pop(0)
        out.append(r)
        for nxt in sorted(after[r]):
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                ready.append(nxt)
    return out


def markdown(repo: Path = REPO) -> str:
    lines = [
        "# What an edit re-runs",
        "",
        "Generated by `python -m alignedreid.devtools.edit_cost > docs/edit_cost.md` from the rules' `code` params",
        "(`workflow/rules/*.smk`) and the demo DAG's rule graph; `tests/unit/test_edit_cost.py` keeps it current",
        "and `tests/workflow/test_pipeline_e2e.py` checks rows against real edits of a finished run.",
        "",
        "An edit counts only when it changes what the code does: comments, docstrings, blank lines and",
        "formatting change no rule's code identity and re-run nothing (`code_closure.file_identity`).",
        f"Result-neutral modules ({', '.join(f'`{m}`' for m in RESULT_NEUTRAL)}) are in no rule's code:",
        "an edit there that does change outputs needs `--forcerun <rule>`. `train` holds only the",
        "weight-determining code (`training.WEIGHT_CODE`); an edit there starts a new set of epoch",
        "checkpoints and keeps every earlier one (`python -m alignedreid.training.checkpoints list`).",
        "",
        f"Rules with temporary outputs ({', '.join(f'`{r}`' for r in sorted(temporary_readers(repo)))}) run again when a rule that reads them does.",
        "`*`: a rule outside the demo DAG (search, INT8, device check, cross-domain, imported checkpoint),",
        "re-run with what follows it when its target is asked for.",
        "",
        "| module | in the code of | an edit re-runs (demo DAG, in order) |",
        "|---|---|---|",
    ]
    for m, direct, reruns in table(repo):
        lines.append(f"| `{m}` | {', '.join(direct) or '-'} | {', '.join(reruns) or 'nothing'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
