"""Resumable, checksummed downloads (http, https, file) with a tqdm progress bar and retries.

A download is cached only when it could be checked: against ``sha256`` when one is given, else by
its length -- the server must say how many bytes it sends (Content-Length, and for a resumed part
a Content-Range that starts where the part ends) and all of them must arrive. Plain http needs a
sha256 (anyone on the path can change the bytes)."""

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


class Unverifiable(CheckpointError):
    """The server's answer cannot be checked (no length, a range that does not fit): never cached."""


def _http_attempt(url: str, part: Path, timeout: float) -> bool:
    """One request: append to ``part``; True when the server gave the full length and all of it arrived."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # requested range past the end: the part may already be complete
            return False  # but nothing says how long the file is: only a sha256 can accept it
        raise
    with resp:
        if have and resp.status != 206:  # server ignored the range: start again
            log.info("server does not resume; downloading %s from the start", url)
            have = 0
        elif resp.status == 206:
            rng = resp.headers.get("Content-Range", "")
            if not rng.startswith(f"bytes {have}-"):
                raise Unverifiable(f"{url}: the server sent part of the file ({rng or 'no Content-Range'}) where bytes {have}- were asked for")
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
        return length is not None and got == int(length)


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
    if scheme == "http" and not sha256:
        raise CheckpointError(
            f"{url}: a plain http download without pretrained.sha256 cannot be trusted (anyone on the way can change it); "
            "give pretrained.sha256 or an https URL"
        )
    checked = bool(sha256)
    if scheme == "file":
        src = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        if not src.is_file():
            raise CheckpointError(f"{url}: file not found")
        shutil.copyfile(src, part)
        checked = True  # a local copy: nothing on the way
    elif scheme in ("http", "https"):
        for attempt in range(1, retries + 1):
            try:
                complete = _http_attempt(url, part, timeout)
                checked = checked or complete
                break
            except Unverifiable:
                part.unlink(missing_ok=True)
                raise
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
    if not checked:
        part.unlink(missing_ok=True)
        raise CheckpointError(
            f"{url}: the download cannot be checked -- no pretrained.sha256 and the server did not say how long the file is "
            "(no Content-Length); it was not kept. Give pretrained.sha256 (the file's sha256) to accept it"
        )
    if sha256:
        got = sha256_of(part)
        if got.lower() != sha256.lower():
            part.unlink()
            raise CheckpointError(f"{url}: sha256 mismatch: expected {sha256.lower()}, got {got}; the download was deleted")
    os.replace(part, dest)
    return dest
