"""Files from the internet: Keras' dataset cache, hash-checked downloads, and knowing when there is no network.

A server without a network finds out once, in about a second, and remembers
it for a few minutes (`network_problem`), instead of letting every download
wait for its timeout.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from hashlib import sha256
from pathlib import Path

from core.errors import DataError

KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets (respects KERAS_HOME)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


_network_lock = threading.Lock()
_network_checked: dict[str, tuple[float, str]] = {}  # host -> (when, "" if reachable else why not)
NETWORK_TTL_S = 300.0
NETWORK_TIMEOUT_S = 1.5


def network_problem(url: str = KERAS_BASE_URL, timeout: float = NETWORK_TIMEOUT_S) -> str:
    """"" when `url`'s host answers a TCP connection within `timeout`, else why not.

    Remembered for NETWORK_TTL_S per host (a fact about this server, the same for every user), so an
    offline classroom finds out once, in about a second, instead of waiting for each download to time out.
    """
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    with _network_lock:
        checked = _network_checked.get(host)
        if checked is not None and time.monotonic() - checked[0] < NETWORK_TTL_S:
            return checked[1]
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            problem = ""
        except OSError as exc:
            problem = f"no network: {host} cannot be reached ({exc.strerror or exc})"
        _network_checked[host] = (time.monotonic(), problem)
        return problem


def cached_or_downloaded(url: str, target: Path, sha256: str | None, allow_download: bool,
                          timeout: float = 15.0) -> Path:
    """Keras' cached copy of `url` when its hash matches (checked on every load), else a download.

    Raises DataError saying why neither works. One rule for every hash-checked file, so a cached
    archive is never trusted more than a fresh download.
    """
    if target.exists() and (sha256 is None or file_sha256(target) == sha256):
        return target
    if not allow_download:
        raise DataError(f"downloads are switched off and Keras' cache has no valid {target.name}")
    problem = network_problem(url)
    if problem:
        raise DataError(problem)
    return fetch(url, target, sha256, timeout=timeout)


def file_sha256(path: str | Path) -> str:
    digest = sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, dest: Path, expected_sha256: str | None = None, timeout: float = 15.0) -> Path:
    """Return `dest`, downloading `url` there first if it is absent; check its SHA-256.

    Raises DataError when the download fails or the hash does not match (the
    partial file is removed, so a later call tries again).
    """
    if dest.exists() and (expected_sha256 is None or file_sha256(dest) == expected_sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DataError(f"could not download {url}: {reason}") from None
    if expected_sha256 is not None and file_sha256(partial) != expected_sha256:
        partial.unlink(missing_ok=True)
        raise DataError(f"downloaded {url} but its SHA-256 does not match; the file was discarded.")
    partial.replace(dest)
    return dest
