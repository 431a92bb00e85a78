"""Epoch checkpoints of a training run: save with rotation, find the newest, resume; one set per
training fingerprint (``results/train/checkpoints/<fingerprint>/``), so that a run with other
settings or other training code starts a set of its own and never touches an earlier one.

MindSpore's ``ModelCheckpoint`` callback rotates checkpoints only inside ``Model.train``; this
loop is custom (P x K sampler, four losses, per-step log), so rotation is done here: keep the
newest ``train.keep_checkpoints`` files, each written atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import sys
from pathlib import Path

import mindspore as ms
from mindspore import nn

from ..foundation.errors import CheckpointError
from ..foundation.io_utils import atomic_path

log = logging.getLogger(__name__)
CKPT_RE = re.compile(r"epoch_(\d+)\.ckpt$")
DESCRIPTION_FILE = "set.json"  # what a set was trained with: config keys, input hashes, code identities


class TrainState(nn.Cell):
    """Network and optimiser together, so one checkpoint holds both."""

    def __init__(self, net, opt):
        super().__init__(auto_prefix=False)
        self.net, self.opt = net, opt


def list_epoch_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every epoch checkpoint in ``ckpt_dir``, oldest first."""
    out = []
    for p in Path(ckpt_dir).glob("epoch_*.ckpt"):
        m = CKPT_RE.search(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def _describe(set_dir: Path) -> dict:
    """The description a set was stamped with ({} when it has none or it cannot be read)."""
    try:
        return json.loads((set_dir / DESCRIPTION_FILE).read_text())
    except (OSError, ValueError):
        return {}


def list_sets(sets_root: Path) -> list[dict]:
    """Every set of epoch checkpoints under ``sets_root`` (results/train/checkpoints), newest first:
    name, folder, epochs, bytes, last change."""
    out = []
    root = Path(sets_root)
    for d in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        epochs = list_epoch_checkpoints(d)
        files = [f for f in d.iterdir() if f.is_file()]
        out.append(
            {
                "name": d.name,
                "path": d,
                "epochs": [e for e, _ in epochs],
                "bytes": sum(f.stat().st_size for f in files),
                "mtime": max((f.stat().st_mtime for f in files), default=d.stat().st_mtime),
            }
        )
    return sorted(out, key=lambda s: -s["mtime"])


def _differences(old: dict, new: dict) -> list[str]:
    """What differs between two set descriptions: config keys, inputs, code modules."""
    out = []
    for section in ("model", "train"):
        a, b = old.get(section, {}), new.get(section, {})
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                out.append(f"{section}.{k}: {a.get(k)!r} -> {b.get(k)!r}")
    for key, what in (("manifest_sha256", "the training manifest"), ("pretrained_sha256", "the pretrained backbone")):
        if old.get(key) != new.get(key):
            out.append(f"{what} changed")
    a, b = old.get("code", {}), new.get("code", {})
    changed = sorted(m for m in set(a) | set(b) if a.get(m) != b.get(m))
    if changed:
        out.append("code of " + ", ".join(changed))
    return out


def migrate_legacy(sets_root: Path) -> None:
    """Earlier layout: epoch checkpoints directly in checkpoints/ (stamped fingerprint.txt) and one
    set aside in checkpoints.previous/. Both become sets of their own; nothing is deleted."""
    root = Path(sets_root)
    previous = root.with_name(root.name + ".previous")
    loose = [p for p in root.glob("*") if p.is_file()] if root.is_dir() else []
    if loose:
        stamp = root / "fingerprint.txt"
        name = "legacy-" + (stamp.read_text().strip()[:12] if stamp.is_file() else "unstamped")
        target = root / name
        target.mkdir(parents=True, exist_ok=True)
        for f in loose:
            f.rename(target / f.name)
        log.info("moved the epoch checkpoints of the earlier layout to %s", target)
    if previous.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        target = root / "legacy-previous"
        if not target.exists():
            previous.rename(target)
            log.info("moved %s to %s", previous, target)


def select_set(sets_root: Path, fingerprint: str, description: dict) -> tuple[Path, str]:
    """The folder of this run's epoch checkpoints, ``sets_root/<fingerprint[:16]>``, and one line saying
    whether it resumes that set or starts a new one and why (which keys, inputs or modules differ from
    the newest other set). Every other set stays on disk untouched: finished training is removed only
    by ``python -m alignedreid.training.checkpoints remove`` (docs/architecture.md §2)."""
    root = Path(sets_root)
    migrate_legacy(root)
    name = fingerprint[:16]
    set_dir = root / name
    existing = list_epoch_checkpoints(set_dir) if set_dir.is_dir() else []
    if existing:
        message = f"resuming checkpoint set {name} after epoch {existing[-1][0]} (same settings, inputs and training code)"
    else:
        others = [s for s in list_sets(root) if s["name"] != name and s["epochs"]]
        if others:
            last = others[0]
            why = _differences(_describe(last["path"]), description) or ["its description is missing (an earlier layout)"]
            message = (
                f"starting checkpoint set {name} from epoch 1: set {last['name']} (epochs {last['epochs'][0]}..{last['epochs'][-1]}) "
                f"cannot be resumed because {'; '.join(why)}. It stays in {last['path']}"
            )
            if all(w.startswith("code of ") for w in why):
                message += (
                    ". If that code change leaves the weights as they were (a refactor, a move), stop this run and continue "
                    f"that set instead: python -m alignedreid.training.checkpoints adopt {last['name']}"
                )
        else:
            message = f"starting checkpoint set {name} from epoch 1 (no earlier epoch checkpoints)"
    set_dir.mkdir(parents=True, exist_ok=True)
    if not (set_dir / DESCRIPTION_FILE).is_file():
        with atomic_path(set_dir / DESCRIPTION_FILE) as tmp:
            tmp.write_text(json.dumps({"fingerprint": fingerprint, **description}, indent=1, sort_keys=True) + "\n")
    return set_dir, message


def resume(state: TrainState, ckpt_dir: Path) -> int:
    """Load the newest epoch checkpoint into ``state``; return its epoch (0 when there is none)."""
    existing = list_epoch_checkpoints(ckpt_dir)
    if not existing:
        return 0
    epoch, last = existing[-1]
    try:
        params = ms.load_checkpoint(str(last))
    except Exception as e:
        raise CheckpointError(f"{last}: cannot resume from this checkpoint ({e}); delete it to resume from an earlier one") from e
    ms.load_param_into_net(state, params)
    log.info("resuming after epoch %d from %s", epoch, last)
    return epoch


def save_epoch(state: TrainState, ckpt_dir: Path, epoch: int, keep: int) -> Path:
    """Write ``epoch_NNNN.ckpt`` atomically and delete all but the newest ``keep``."""
    target = ckpt_dir / f"epoch_{epoch:04d}.ckpt"
    with atomic_path(target) as tmp:
        ms.save_checkpoint(state, str(tmp), append_dict={"epoch_num": epoch})
    for _, old in list_epoch_checkpoints(ckpt_dir)[:-keep]:
        old.unlink()
    return target


def fingerprint_of(description: dict) -> str:
    """The training fingerprint of a set description (TrainJob.fingerprint hashes the same dict)."""
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def adopt(sets_root: Path, name: str, code: dict) -> tuple[Path, list[int]]:
    """Continue set ``name`` under the training code identities ``code``: a new set, named by the
    fingerprint the same settings and inputs have with this code, holding hard links to (or copies of)
    the old set's files; the old set stays as it was. For a code change that does not change the
    weights (a refactor), which a fingerprint of code cannot tell apart from one that does: the user
    says so. Refused when the set has no description or no epochs, or the new set already has epochs."""
    root = Path(sets_root)
    src = root / name
    desc = _describe(src)
    if not src.is_dir() or not desc:
        raise CheckpointError(f"{src}: no checkpoint set with a description ({DESCRIPTION_FILE}) to adopt")
    epochs = [e for e, _ in list_epoch_checkpoints(src)]
    if not epochs:
        raise CheckpointError(f"{src}: no epoch checkpoints to continue")
    new_desc = {k: v for k, v in desc.items() if k not in ("fingerprint", "adopted_from")}
    new_desc["code"] = code
    fingerprint = fingerprint_of(new_desc)
    target = root / fingerprint[:16]
    if target == src:
        raise CheckpointError(f"set {name} was trained with the current training code already: nothing to adopt")
    if list_epoch_checkpoints(target):
        raise CheckpointError(f"{target}: the current code's set already holds epoch checkpoints; remove it first to adopt {name}")
    tmp = root / f".adopt-{fingerprint[:16]}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and f.name != DESCRIPTION_FILE:
            try:
                os.link(f, tmp / f.name)  # no second copy of the weights on disk
            except OSError:
                shutil.copy2(f, tmp / f.name)
    (tmp / DESCRIPTION_FILE).write_text(json.dumps({"fingerprint": fingerprint, **new_desc, "adopted_from": name}, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(target, ignore_errors=True)  # an empty set of the current code (a run started and stopped)
    tmp.rename(target)
    return target, epochs


# ---- the documented commands that remove or adopt finished training ----------------------------


def _current_set(out_dir: Path) -> str | None:
    try:
        return json.loads((Path(out_dir) / "train_summary.json").read_text()).get("checkpoint_set")
    except (OSError, ValueError):
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m alignedreid.training.checkpoints",
        description="List or remove sets of epoch checkpoints (one per training fingerprint). Runs never delete a set; this does.",
    )
    ap.add_argument("--train-dir", default="results/train", help="the train stage's folder (default: results/train)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="every set: name, epochs, size, and which one results/train/model.ckpt came from")
    rm = sub.add_parser("remove", help="delete sets by name, or every set but the current one")
    rm.add_argument("names", nargs="*", help="set names as 'list' prints them")
    rm.add_argument("--all-but-current", action="store_true", help="keep only the set results/train/model.ckpt was trained in")
    ad = sub.add_parser(
        "adopt", help="continue a set under the current training code (after a change that does not change the weights, e.g. a refactor)"
    )
    ad.add_argument("name", help="the set to continue, as 'list' prints it")
    args = ap.parse_args(argv)
    root = Path(args.train_dir) / "checkpoints"
    migrate_legacy(root)
    sets = list_sets(root)
    current = _current_set(args.train_dir)
    if args.cmd == "list":
        for s in sets:
            span = f"epochs {s['epochs'][0]}..{s['epochs'][-1]}" if s["epochs"] else "no epochs"
            mark = "  (current)" if s["name"] == current else ""
            print(f"{s['name']}  {span}  {s['bytes'] / 1e6:.1f} MB  {s['path']}{mark}")
        if not sets:
            print(f"no checkpoint sets under {root}")
        return 0
    names = {s["name"] for s in sets}
    if args.cmd == "adopt":
        from .job import weight_code_identities

        try:
            target, epochs = adopt(root, args.name, weight_code_identities())
        except CheckpointError as e:
            print(e, file=sys.stderr)
            return 2
        print(f"set {args.name} (epochs {epochs[0]}..{epochs[-1]}) continues as {target} under the current training code; the next run resumes it")
        return 0
    if args.all_but_current:
        if current is None:
            print(f"no current set recorded in {args.train_dir}/train_summary.json; name the sets to remove", file=sys.stderr)
            return 2
        chosen = sorted(names - {current})
    else:
        unknown = sorted(set(args.names) - names)
        if unknown or not args.names:
            print(f"unknown set(s) {unknown}; sets under {root}: {sorted(names)}" if unknown else "name the sets to remove", file=sys.stderr)
            return 2
        chosen = sorted(args.names)
    for name in chosen:
        shutil.rmtree(root / name)
        print(f"removed {root / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
