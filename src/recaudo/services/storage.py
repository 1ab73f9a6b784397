"""Stored files: bytes kept under ``Settings.data_dir``, addressed by a path relative to it.

``storage_path`` columns (settlement files, deliveries, exchanged files) hold these relative
paths, so moving ``data_dir`` moves every stored file with it. Writes are atomic (a temporary
file in the same directory, fsync, then rename), so a reader never sees half a file and a crash
leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from recaudo.domain.errors import ValidationFailed


def resolve(data_dir: Path, relative_path: str) -> Path:
    """The absolute path of a stored file; refuses paths that would leave ``data_dir``."""
    rel = PurePosixPath(relative_path)
    if rel.is_absolute() or not rel.parts or any(part in ("..", "") for part in rel.parts):
        raise ValidationFailed(f"invalid storage path: {relative_path!r}")
    return Path(data_dir).joinpath(*rel.parts)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_bytes(data_dir: Path, relative_path: str, data: bytes) -> str:
    """Write ``data`` atomically at ``data_dir/relative_path``; returns its SHA-256 (hex)."""
    target = resolve(data_dir, relative_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return sha256_of(data)


def read_bytes(data_dir: Path, relative_path: str) -> bytes:
    """The stored bytes; ``FileNotFoundError`` when the file is missing."""
    return resolve(data_dir, relative_path).read_bytes()


def exists(data_dir: Path, relative_path: str) -> bool:
    return resolve(data_dir, relative_path).is_file()


def remove(data_dir: Path, relative_path: str) -> None:
    """Delete a stored file; missing files are ignored."""
    with contextlib.suppress(FileNotFoundError):
        resolve(data_dir, relative_path).unlink()


@contextlib.contextmanager
def spooled(data_dir: Path) -> Iterator[Path]:
    """A temporary file under ``data_dir/files/.tmp`` to write a large file into, then
    ``store_file`` it; it is removed on the way out if it was not stored."""
    tmp_dir = Path(data_dir) / "files" / ".tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(suffix=".part", dir=tmp_dir)
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def store_file(data_dir: Path, relative_path: str, source: Path) -> None:
    """Move ``source`` (a file under ``data_dir``, e.g. from ``spooled``) to
    ``data_dir/relative_path`` atomically, after an fsync."""
    target = resolve(data_dir, relative_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(source, target)
