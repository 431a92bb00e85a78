"""Walking a user's folder of images (search): visible files in a stable order, and a cheap
signature of the folder's content. Imports nothing heavy: the Snakefile uses it at parse time."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def visible_files(folder: Path):
    """Every file under ``folder``, recursively, sorted, without hidden files and folders."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def folder_signature(folder) -> str:
    """A hash of the relative paths, sizes and modification times of every visible file under
    ``folder`` (a rule parameter: a change in the folder re-runs its listing)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return f"missing:{folder}"
    h = hashlib.sha256()
    for p in visible_files(folder):
        st = p.stat()
        h.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
