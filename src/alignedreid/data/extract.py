"""Safe extraction of a dataset zip: every entry must stay inside the target folder."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import zipfile
from pathlib import Path

from tqdm import tqdm

from ..errors import DatasetError
from ..io_utils import atomic_directory

log = logging.getLogger(__name__)


def _check_member(info: zipfile.ZipInfo, target: Path, zip_path: Path) -> Path:
    name = info.filename
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DatasetError(f"{zip_path}: entry {name!r} has an absolute path; refusing to extract")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DatasetError(f"{zip_path}: entry {name!r} is a symbolic link; refusing to extract")
    dest = (target / name).resolve()
    if dest != target and target not in dest.parents:
        raise DatasetError(f"{zip_path}: entry {name!r} would be written outside {target}; refusing to extract")
    return dest


def safe_extract(zip_path: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract ``zip_path`` into ``target`` (created). All entries are checked before anything is
    written; extraction goes to a temporary sibling folder that is renamed into place at the end,
    so an interrupted or refused extraction leaves no partial ``target``."""
    zip_path = Path(zip_path)
    target = Path(target).resolve()
    if not zip_path.is_file():
        raise DatasetError(f"{zip_path}: dataset zip not found")
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as e:
        raise DatasetError(f"{zip_path}: not a readable zip file ({e})") from e
    with zf:
        members = zf.infolist()
        for info in members:  # validate everything first
            _check_member(info, target, zip_path)
        with atomic_directory(target) as tmp:
            for info in tqdm(members, desc=f"extract {zip_path.name}", unit="file", mininterval=2):
                dest = _check_member(info, tmp.resolve(), zip_path)
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with zf.open(info) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)
                except (zipfile.BadZipFile, OSError, EOFError) as e:
                    raise DatasetError(f"{zip_path}: entry {info.filename!r} is damaged ({e})") from e
    log.info("extracted %d entries of %s into %s", len(members), zip_path, target)
    return target
