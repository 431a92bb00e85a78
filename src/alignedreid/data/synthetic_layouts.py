"""Where the synthetic generator puts each image, per dataset layout, so that the demo and the
tests exercise every source's reader exactly as a real release would be read.

Each writer gets every planned image as (split, pid, camera 1-based, frame, kind) and returns
the path to write it to; ``finish`` writes what the layout keeps beside the images (MSMT17's
list files). Layouts without junk refuse it; their distractors become identities seen only in
the gallery (DukeMTMC-reID's 408 gallery-only identities are such)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .names import MARKET_FOLDERS, format_name


class Writer:
    """Base of the layouts' writers; data/sources.py registers one per source. ``options`` is the
    dataset config section (a layout reads its own keys from it, e.g. cuhk03.images)."""

    image_format = "JPEG"
    keeps_distractor_id = False  # True: distractors keep pid 0 (Market-1501's 0000 names)
    has_junk = False  # the layout has junk images (pid -1)
    max_cameras = 9  # cameras its file names can number (one digit in the Market-style names)

    def __init__(self, root: Path, gallery_only_start: int, options: dict | None = None):
        self.root = root
        self.next_distractor = gallery_only_start  # fresh ids for distractors (layouts without pid 0)
        self.counter: dict[int, int] = defaultdict(int)

    def pid_of(self, pid: int, kind: str) -> int:
        if kind == "distractor" and not self.keeps_distractor_id:
            self.next_distractor += 1
            return self.next_distractor
        return pid

    def finish(self) -> None:
        pass


class MarketWriter(Writer):
    keeps_distractor_id = True
    has_junk = True

    def path(self, split, pid, cam, frame, kind) -> Path:
        return self.root / MARKET_FOLDERS[split] / format_name(pid, cam, 1, frame, 1)


class DukeWriter(Writer):
    def path(self, split, pid, cam, frame, kind) -> Path:
        pid = self.pid_of(pid, kind)
        return self.root / "DukeMTMC-reID" / MARKET_FOLDERS[split] / f"{pid:04d}_c{cam}_f{frame:07d}.jpg"


class CUHK03Writer(Writer):
    image_format = "PNG"

    def __init__(self, root, gallery_only_start, options=None):
        super().__init__(root, gallery_only_start)
        self.images = (options or {}).get("cuhk03", {}).get("images", "labeled")

    def path(self, split, pid, cam, frame, kind) -> Path:
        pid = self.pid_of(pid, kind)
        self.counter[pid] += 1
        return self.root / "cuhk03-np" / self.images / MARKET_FOLDERS[split] / f"{pid:04d}_c{cam}_{self.counter[pid]}.png"


class MSMT17Writer(Writer):
    """The V1 release: train/ and test/ with one folder per label, four list files; every
    tenth image of an identity (from the third on) goes to list_val, as a validation split."""

    max_cameras = 99

    def __init__(self, root, gallery_only_start, options=None):
        super().__init__(root, gallery_only_start)
        self.labels: dict[tuple[str, int], int] = {}
        self.lines: dict[str, list[str]] = defaultdict(list)

    def path(self, split, pid, cam, frame, kind) -> Path:
        pid = self.pid_of(pid, kind)
        space = "train" if split == "train" else "test"
        label = self.labels.setdefault((space, pid), sum(1 for s, _ in self.labels if s == space))
        index = self.counter[pid]
        self.counter[pid] += 1
        rel = f"{label:04d}/{label:04d}_{index:03d}_{cam:02d}_0303morning_{frame % 10000:04d}_0.jpg"
        lst = split
        if split == "train" and index >= 2 and index % 10 == 2:
            lst = "val"
        self.lines[lst].append(f"{rel} {label}")
        return self.root / "MSMT17_V1" / space / rel

    def finish(self) -> None:
        for lst in ("train", "val", "query", "gallery"):
            (self.root / "MSMT17_V1" / f"list_{lst}.txt").write_text("".join(line + "\n" for line in self.lines[lst]))


class FolderWriter(Writer):
    max_cameras = 99

    def path(self, split, pid, cam, frame, kind) -> Path:
        pid = self.pid_of(pid, kind)
        return self.root / split / f"person_{pid:04d}" / f"c{cam}_{frame:06d}.jpg"
