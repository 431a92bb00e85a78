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


def _destination(name: str, target: Path, archive: Path) -> Path:
    """Where entry ``name`` lands under ``target``; refuses absolute paths and escapes (zip/tar slip)."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DatasetError(f"{archive}: entry {name!r} has an absolute path; refusing to extract")
    dest = (target / name).resolve()
    if dest != target and target not in dest.parents:
        raise DatasetError(f"{archive}: entry {name!r} would be written outside {target}; refusing to extract")
    return dest


def _check_member(info: zipfile.ZipInfo, target: Path, zip_path: Path) -> Path:
    if stat.S_ISLNK(info.external_attr >> 16):
        raise DatasetError(f"{zip_path}: entry {info.filename!r} is a symbolic link; refusing to extract")
    return _destination(info.filename, target, zip_path)


def _check_tar_member(info: tarfile.TarInfo, target: Path, tar_path: Path) -> Path:
    if not (info.isfile() or info.isdir()):
        raise DatasetError(f"{tar_path}: entry {info.name!r} is a link or special file; refusing to extract")
    return _destination(info.name, target, tar_path)


def _extract_checked(archive: Path, members: list, target: Path, check, is_dir, copy) -> None:
    """Check every member first (``check(info, folder) -> destination``), then write them into a
    temporary sibling folder renamed to ``target`` at the end (``copy(info, dest)`` writes a file)."""
    for info in members:
        check(info, target, archive)
    with atomic_directory(target) as tmp:
        for info in tqdm(members, desc=f"extract {archive.name}", unit="file", mininterval=2):
            dest = check(info, tmp.resolve(), archive)
            if is_dir(info):
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            copy(info, dest)
    log.info("extracted %d entries of %s into %s", len(members), archive, target)


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


def safe_extract_tar(tar_path: str | os.PathLike, target: str | os.PathLike) -> Path:
    """As :func:`safe_extract_zip`, for .tar, .tar.gz and .tgz (every entry checked before any is written)."""
    tar_path = Path(tar_path)
    target = Path(target).resolve()
    if not tar_path.is_file():
        raise DatasetError(f"{tar_path}: dataset archive not found")

    def copy(info, dest):
        with tf.extractfile(info) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)

    try:
        with tarfile.open(tar_path) as tf:
            _extract_checked(tar_path, tf.getmembers(), target, _check_tar_member, tarfile.TarInfo.isdir, copy)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetError(f"{tar_path}: not a readable tar archive or damaged ({type(e).__name__}: {e})") from e
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

    def copy(info, dest):
        try:
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise DatasetError(f"{zip_path}: entry {info.filename!r} is damaged ({e})") from e

    with zf:
        _extract_checked(zip_path, zf.infolist(), target, _check_member, zipfile.ZipInfo.is_dir, copy)
    return target
