"""Safe extraction of a dataset archive (.zip, or .tar / .tar.gz / .tgz as MSMT17 ships): every
entry must stay inside the target folder; links, devices and absolute paths are refused."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tarfile
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


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def is_archive(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract a .zip or a tar archive into ``target``, safely and atomically (see below)."""
    if str(archive).lower().endswith(".zip"):
        return safe_extract_zip(archive, target)
    if is_archive(archive):
        return safe_extract_tar(archive, target)
    raise DatasetError(f"{archive}: not a dataset archive (expected one of {', '.join(ARCHIVE_SUFFIXES)})")


def _check_tar_member(info: tarfile.TarInfo, target: Path, tar_path: Path) -> Path:
    name = info.name
    if name.startswith(("/", "\\")):
        raise DatasetError(f"{tar_path}: entry {name!r} has an absolute path; refusing to extract")
    if not (info.isfile() or info.isdir()):
        raise DatasetError(f"{tar_path}: entry {name!r} is a link or special file; refusing to extract")
    dest = (target / name).resolve()
    if dest != target and target not in dest.parents:
        raise DatasetError(f"{tar_path}: entry {name!r} would be written outside {target}; refusing to extract")
    return dest


def safe_extract_tar(tar_path: str | os.PathLike, target: str | os.PathLike) -> Path:
    """As :func:`safe_extract_zip`, for .tar, .tar.gz and .tgz (every entry checked before any is written)."""
    tar_path = Path(tar_path)
    target = Path(target).resolve()
    if not tar_path.is_file():
        raise DatasetError(f"{tar_path}: dataset archive not found")
    try:
        with tarfile.open(tar_path) as tf:
            members = tf.getmembers()
            for info in members:
                _check_tar_member(info, target, tar_path)
            with atomic_directory(target) as tmp:
                for info in tqdm(members, desc=f"extract {tar_path.name}", unit="file", mininterval=2):
                    dest = _check_tar_member(info, tmp.resolve(), tar_path)
                    if info.isdir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with tf.extractfile(info) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetError(f"{tar_path}: not a readable tar archive or damaged ({type(e).__name__}: {e})") from e
    log.info("extracted %d entries of %s into %s", len(members), tar_path, target)
    return target


def safe_extract_zip(zip_path: str | os.PathLike, target: str | os.PathLike) -> Path:
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
