"""Private files: everything under the instance folder (database, WAL, mail, keys, the
secret key, demo credentials, locks) is 0600 and every folder 0700, whatever the umask of
the process that creates them — the database and the mail hold personal data."""
from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and missing parents) if needed and make it 0700."""
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def open_private(path: str | os.PathLike, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """``os.open`` a file as 0600 from its first byte (also when it already existed)."""
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def write_private(path: str | os.PathLike, data: str | bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to a 0600 file; ``exclusive`` refuses to replace an existing file."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    with os.fdopen(open_private(path, flags), "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def tighten(root: str | os.PathLike) -> None:
    """Make ``root`` and everything under it 0700 (folders) / 0600 (files): repairs an
    instance folder made by an older version or under a loose umask. Symlinks are left."""
    root = Path(root)
    if not root.is_dir() or root.is_symlink():
        return
    os.chmod(root, DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                os.chmod(p, DIR_MODE)
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                os.chmod(p, FILE_MODE)
