"""The files users upload into a run store (datasets, by content hash), who uploaded them, and their quota.

An uploaded dataset is kept under `datasets/<sha256><suffix>` so that a run
made on it can load it again after a restart, and runs made on the same file
share one copy. Beside each file, `<sha256>.json` records its name and the
workspaces that uploaded it. Everything uploaded into a store (these files
and the model files of uploaded-model runs) counts against one quota
(`core.limits.MAX_UPLOAD_BYTES`, CONVLAB_UPLOAD_QUOTA_MB): a file that
would pass it is refused before anything is written, with what the store
holds and how to make room. Files are kept only once they have been checked
(the caller keeps them after parsing them).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from core import atomic, limits
from core.errors import DataError, RunError
from core.limits import format_bytes
from core.settings import int_setting

QUOTA_ENV = "CONVLAB_UPLOAD_QUOTA_MB"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_FILE = re.compile(r"([0-9a-f]{64})(\.npz|\.zip)")


def upload_quota() -> int:
    """CONVLAB_UPLOAD_QUOTA_MB, else `core.limits.MAX_UPLOAD_BYTES`."""
    return int_setting(QUOTA_ENV, limits.MAX_UPLOAD_BYTES // 10**6, 1, 10**9) * 10**6


@dataclass(frozen=True)
class Upload:
    """One uploaded file in the store."""

    digest: str
    suffix: str
    name: str  # as the user named it
    size: int
    uploaded_by: tuple[str, ...]  # workspace keys ("" for the CLI)


class UploadStore:
    """The `datasets/` folder of a run store."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, digest: str, suffix: str) -> Path:
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise RunError(f"'{str(digest)[:70]}' is not the SHA-256 of a stored dataset.")
        return self.folder / f"{digest}{suffix}"

    def check_room(self, size: int, others: int = 0) -> None:
        """Refuse (DataError) a file of `size` bytes that would take the store's uploads past the quota.

        `others` is what the store's uploaded model files already take.
        """
        quota, held = upload_quota(), self.total_bytes() + others
        if held + size > quota:
            raise DataError(
                f"the run store's uploads would pass their quota: they hold {format_bytes(held)} of "
                f"{format_bytes(quota)}, and this file is {format_bytes(size)}. Delete uploads no run uses "
                "(Runs page, 'What the store holds') or runs made on uploads you no longer need; whoever runs the "
                f"server can raise {QUOTA_ENV}.")

    def keep(self, data: bytes, file_name: str, suffix: str, uploaded_by: str = "", others: int = 0) -> tuple[str, Path]:
        """Keep a checked upload by its content hash (once, however many times it is uploaded); returns (sha256, path)."""
        digest = sha256(data).hexdigest()
        path = self.path(digest, suffix)
        if not path.exists():
            self.check_room(len(data), others)
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes(path, data)
        meta = self._meta(digest)
        by = sorted(set(meta.get("uploaded_by", [])) | {uploaded_by})
        atomic.write_json(self.folder / f"{digest}.json", {"name": meta.get("name") or str(file_name)[:200],
                                                            "uploaded_by": by})
        return digest, path

    def listing(self) -> list[Upload]:
        """Every uploaded file, largest first."""
        found = []
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        for entry in entries:
            match = _FILE.fullmatch(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            meta = self._meta(match.group(1))
            found.append(Upload(match.group(1), match.group(2), str(meta.get("name") or entry.name),
                                entry.stat(follow_symlinks=False).st_size, tuple(meta.get("uploaded_by", []))))
        return sorted(found, key=lambda upload: -upload.size)

    def total_bytes(self) -> int:
        return sum(upload.size for upload in self.listing())

    def remove(self, digest: str, suffix: str) -> None:
        self.path(digest, suffix).unlink(missing_ok=True)
        (self.folder / f"{digest}.json").unlink(missing_ok=True)

    def _meta(self, digest: str) -> dict:
        try:
            meta = atomic.read_json(self.folder / f"{digest}.json")
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}
