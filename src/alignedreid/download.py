"""Resumable, checksummed downloads (http, https, file) with a tqdm progress bar and retries."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from .errors import CheckpointError
from .io_utils import sha256_of

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def _http_attempt(url: str, part: Path, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # requested range past the end: the part is already complete
            return
        raise
    with resp:
        if have and resp.status != 206:  # server ignored the range: start again
            log.info("server does not resume; downloading %s from the start", url)
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        mode = "ab" if have else "wb"
        with open(part, mode) as out, tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=Path(part).stem, mininterval=1) as bar:
            got = 0
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                out.write(block)
                got += len(block)
                bar.update(len(block))
        if length is not None and got < int(length):
            raise ConnectionError(f"connection closed after {have + got} of {total} bytes")


@contextlib.contextmanager
def exclusive(lock_file: Path):
    """Hold an exclusive lock on ``lock_file`` (created): two runs sharing a download cache take turns
    instead of appending to the same ``.part`` file."""
    with open(lock_file, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process downloading to %s", lock_file.with_suffix(""))
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def download(url: str, dest: str | os.PathLike, *, sha256: str | None, retries: int, timeout: float, backoff: float = 1.0) -> Path:
    """Download ``url`` to ``dest``. Partial data is kept in ``dest.part`` and resumed with an
    HTTP Range request on retry or on a later call; ``dest`` appears only when complete and,
    if ``sha256`` is given, verified (a mismatch deletes the download and raises). Concurrent calls
    for the same ``dest`` are serialised by ``dest.lock``; a later one finds the finished file."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(dest.with_name(dest.name + ".lock")):
        if dest.is_file():
            if not sha256 or sha256_of(dest) == sha256.lower():
                log.info("using cached download %s", dest)
                return dest
            log.warning("cached %s does not match its sha256; downloading again", dest)
            dest.unlink()
        log.info("downloading %s", url)
        return _download(url, dest, sha256, retries, timeout, backoff)


def _download(url: str, dest: Path, sha256, retries: int, timeout: float, backoff: float) -> Path:
    part = dest.with_name(dest.name + ".part")
    scheme = urllib.parse.urlparse(url).scheme
    if scheme == "file":
        src = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        if not src.is_file():
            raise CheckpointError(f"{url}: file not found")
        shutil.copyfile(src, part)
    elif scheme in ("http", "https"):
        for attempt in range(1, retries + 1):
            try:
                _http_attempt(url, part, timeout)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                if isinstance(e, urllib.error.HTTPError) and 400 <= e.code < 500:
                    raise CheckpointError(f"{url}: server answered {e.code} {e.reason}") from e
                if attempt == retries:
                    raise CheckpointError(
                        f"{url}: download failed after {retries} attempts ({e}); partial data kept in {part} for the next run"
                    ) from e
                wait = backoff * 2 ** (attempt - 1)
                log.warning("download attempt %d/%d failed (%s); retrying in %.0f s", attempt, retries, e, wait)
                time.sleep(wait)
    else:
        raise CheckpointError(f"{url}: unsupported URL scheme {scheme!r} (expected http, https or file)")
    if sha256:
        got = sha256_of(part)
        if got.lower() != sha256.lower():
            part.unlink()
            raise CheckpointError(f"{url}: sha256 mismatch: expected {sha256.lower()}, got {got}; the download was deleted")
    os.replace(part, dest)
    return dest
