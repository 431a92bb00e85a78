"""Walking a user's folder of images (search): every entry in a stable order, either a candidate file
or a reason it is skipped without being opened, and a cheap signature of the folder's content.
Imports nothing heavy and never opens a file: the Snakefile uses it at parse time, and a FIFO, a
dangling or looping link or a name that is not valid UTF-8 must not stop the DAG."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

HIDDEN = "hidden (the name starts with '.'; not searched)"
LINKED_FOLDER = "symbolic link to a folder (not followed: its images would be listed twice or loop)"


def walk_entries(folder) -> Iterator[tuple[Path, str | None]]:
    """Every entry under ``folder``, recursively, sorted: (path, None) for a file to look at (possibly a
    link to one), (path, reason) for an entry skipped as it is -- hidden files and folders, symbolic
    links to folders, folders that cannot be read."""
    unreadable: list[OSError] = []
    for root, dirs, files in os.walk(folder, onerror=unreadable.append):
        keep = []
        for d in sorted(dirs):
            p = Path(root) / d
            if d.startswith("."):
                yield p, HIDDEN
            elif os.path.islink(p):
                yield p, LINKED_FOLDER
            else:
                keep.append(d)
        dirs[:] = keep
        for name in sorted(files):
            yield Path(root) / name, (HIDDEN if name.startswith(".") else None)
    for e in unreadable:
        if e.filename is not None and Path(e.filename) != Path(folder):
            yield Path(e.filename), f"folder cannot be read ({e.strerror})"


def visible_files(folder: Path):
    """Every file under ``folder`` that is not skipped as it is (see :func:`walk_entries`)."""
    return (p for p, reason in walk_entries(folder) if reason is None)


def folder_signature(folder) -> str:
    """A hash of the relative paths (as bytes), sizes and modification times of every entry under
    ``folder`` (a rule parameter: a change in the folder re-runs its listing). A link counts with its
    target's size and time, or its own when the target is missing; nothing is opened."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return f"missing:{folder}"
    h = hashlib.sha256()
    for p, reason in walk_entries(folder):
        try:
            st = os.stat(p)
        except OSError:
            try:
                st = os.lstat(p)
            except OSError:
                continue
        h.update(os.fsencode(p.relative_to(folder)) + f"\0{st.st_size}\0{st.st_mtime_ns}\0{reason}\n".encode())
    return h.hexdigest()


def printable(path) -> str:
    """``path`` on one line, unambiguously: backslashes, control characters (newlines, tabs) and bytes
    that are not UTF-8 written as backslash escapes (skipped-entry lists, logs, pages)."""
    out = []
    for c in str(path):
        if c == "\\":
            out.append("\\\\")
        elif c.isprintable():
            out.append(c)
        elif 0xDC80 <= ord(c) <= 0xDCFF:  # an undecodable byte, as Python's file-system decoding keeps it
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        else:
            out.append(repr(c)[1:-1])
    return "".join(out)
