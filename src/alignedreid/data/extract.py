"""Safe extraction of a dataset archive (.zip, or .tar / .tar.gz / .tgz as MSMT17 ships): every
entry must stay inside the target folder; links, devices, absolute paths, encrypted and sparse
entries, duplicate names and a file and a folder of the same name are refused, and the total size
and the compression ratio are bounded (dataset.archive: max_gb, max_ratio) -- all checked on the
archive's directory before any byte is written."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

from tqdm import tqdm

from ..foundation.errors import DatasetError
from ..foundation.io_utils import atomic_directory

log = logging.getLogger(__name__)


def _destination(name: str, target: Path, archive: Path) -> Path:
    """Where entry ``name`` lands under ``target``; refuses absolute paths and escapes (zip/tar slip)."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DatasetError(f"{archive}: entry {name!r} has an absolute path; refusing to extract")
    dest = (target / name).resolve()
    if dest != target and target not in dest.parents:
        raise DatasetError(f"{archive}: entry {name!r} would be written outside {target}; refusing to extract")
    return dest


# defaults of dataset.archive (the schema's): MSMT17 V2, the largest release, is ~5 GB of JPEGs,
# which do not compress; a zip of zeros reaches 1000:1
DEFAULT_LIMITS = {"max_gb": 100.0, "max_ratio": 100.0}


def _check_member(info: zipfile.ZipInfo, target: Path, zip_path: Path) -> Path:
    if stat.S_ISLNK(info.external_attr >> 16):
        raise DatasetError(f"{zip_path}: entry {info.filename!r} is a symbolic link; refusing to extract")
    if info.flag_bits & 0x1:
        raise DatasetError(f"{zip_path}: entry {info.filename!r} is encrypted; extract the archive yourself and give the folder as dataset.root")
    return _destination(info.filename, target, zip_path)


def _check_tar_member(info: tarfile.TarInfo, target: Path, tar_path: Path) -> Path:
    if not (info.isfile() or info.isdir()):
        raise DatasetError(f"{tar_path}: entry {info.name!r} is a link or special file; refusing to extract")
    if info.issparse():
        raise DatasetError(f"{tar_path}: entry {info.name!r} is a sparse file (its size on disk is not its size in the archive); refusing to extract")
    return _destination(info.name, target, tar_path)


def _check_layout(archive: Path, members: list, target: Path, check, is_dir, size, packed, limits: dict) -> None:
    """Every member checked (``check``), then the archive as a whole: no two entries for one path, no
    file where another entry needs a folder, the total size and compression ratio within ``limits``."""
    kinds: dict[Path, tuple[str, str]] = {}
    total = 0
    max_bytes, max_ratio = limits["max_gb"] * 1e9, limits["max_ratio"]
    for info in members:
        dest = check(info, target, archive)
        name = getattr(info, "filename", None) or info.name
        kind = "folder" if is_dir(info) else "file"
        if dest in kinds and not (kind == "folder" and kinds[dest][0] == "folder"):
            raise DatasetError(f"{archive}: entries {kinds[dest][1]!r} and {name!r} are the same path; refusing to extract (which one is meant?)")
        kinds[dest] = (kind, name)
        if kind == "file":
            total += size(info)
            if total > max_bytes:
                raise DatasetError(
                    f"{archive}: extracting reaches {total / 1e9:.1f} GB at entry {name!r}, above dataset.archive.max_gb ({limits['max_gb']:g})"
                )
            stored = packed(info)
            if stored is not None and size(info) > 1_000_000 and size(info) > max_ratio * max(stored, 1):
                raise DatasetError(
                    f"{archive}: entry {name!r} expands {size(info) / max(stored, 1):.0f}:1 ({size(info):,} bytes from {stored:,}), "
                    f"above dataset.archive.max_ratio ({max_ratio:g}); a compression bomb?"
                )
    for dest, (_kind, name) in kinds.items():
        for parent in dest.parents:
            if parent in kinds and kinds[parent][0] == "file":
                raise DatasetError(f"{archive}: entry {kinds[parent][1]!r} is a file but {name!r} needs it to be a folder; refusing to extract")
            if parent == target:
                break
    archive_bytes = archive.stat().st_size
    if total > 1_000_000 and total > max_ratio * archive_bytes:
        raise DatasetError(
            f"{archive}: {archive_bytes:,} bytes would extract to {total:,} ({total / archive_bytes:.0f}:1), above dataset.archive.max_ratio ({max_ratio:g})"
        )


def _extract_checked(archive: Path, members: list, target: Path, check, is_dir, copy, size, packed, limits: dict) -> None:
    """Check every member and the archive's layout and size first (:func:`_check_layout`), then write
    them into a temporary sibling folder renamed to ``target`` at the end (``copy(info, dest)``
    writes a file)."""
    _check_layout(archive, members, target, check, is_dir, size, packed, limits or DEFAULT_LIMITS)
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


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike, limits: dict | None = None) -> Path:
    """Extract a .zip or a tar archive into ``target``, safely and atomically (see below);
    ``limits``: dataset.archive (max_gb, max_ratio)."""
    if str(archive).lower().endswith(".zip"):
        return safe_extract_zip(archive, target, limits)
    if is_archive(archive):
        return safe_extract_tar(archive, target, limits)
    raise DatasetError(f"{archive}: not a dataset archive (expected one of {', '.join(ARCHIVE_SUFFIXES)})")


def safe_extract_tar(tar_path: str | os.PathLike, target: str | os.PathLike, limits: dict | None = None) -> Path:
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
            # a tar has no per-entry compression: the ratio checked is the whole archive's
            _extract_checked(
                tar_path, tf.getmembers(), target, _check_tar_member, tarfile.TarInfo.isdir, copy, lambda i: i.size, lambda i: None, limits
            )
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetError(f"{tar_path}: not a readable tar archive or damaged ({type(e).__name__}: {e})") from e
    return target


def safe_extract_zip(zip_path: str | os.PathLike, target: str | os.PathLike, limits: dict | None = None) -> Path:
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
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
            raise DatasetError(f"{zip_path}: entry {info.filename!r} is damaged ({e})") from e

    with zf:
        _extract_checked(
            zip_path, zf.infolist(), target, _check_member, zipfile.ZipInfo.is_dir, copy, lambda i: i.file_size, lambda i: i.compress_size, limits
        )
    return target
