"""Secrets on disk: the key that signs tokens (api) and session cookies (web), and files that
only their owner may read (the store's sqlite file holds password hashes)."""
from __future__ import annotations

import os
import secrets


def load_secret(configured: str, data_dir: str, filename: str = "secret.key") -> bytes:
    """Return SECRET_KEY if set, else the key kept in ``data_dir`` (made on first use).

    Keeping a generated key on disk means tokens and sessions survive a restart without any
    configuration; set SECRET_KEY in a real deployment.
    """
    if configured:
        return configured.encode()
    path = os.path.join(data_dir, filename)
    try:
        with open(path, "rb") as existing:
            return existing.read().strip()
    except FileNotFoundError:
        pass
    os.makedirs(data_dir, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return load_secret("", data_dir, filename)
    with os.fdopen(fd, "wb") as new:
        new.write(key)
    return key


def owner_only(path: str) -> None:
    """Make an sqlite file readable by its owner alone, before sqlite opens it: created 0600 if
    missing, else chmod-ed (and its -wal and -shm files, which sqlite gives the file's mode
    when it makes them, but which an earlier version may have left readable)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for name in (path, path + "-wal", path + "-shm"):
        try:
            os.chmod(name, 0o600)
        except FileNotFoundError:
            pass
