"""Cache files that only this user's anvil could have written.

The index cache lives inside the repository (``.anvil/cache/``), and a
repository is not trusted: a cloned project could ship a crafted
``search.pkl`` whose unpickling runs code. So every cache file carries a
keyed BLAKE2b tag over its bytes, with a secret key kept outside the
repository (``$ANVIL_HOME/cache.key``, 0600, created on first use). A file
whose tag does not verify is never unpickled: it is treated as missing and
rebuilt. Costs ~10 ms per 10 MB.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import pickle
from pathlib import Path
from typing import Any

from anvil.paths import anvil_home

MAGIC = b"ANVILIDX1"
TAG_BYTES = 32
KEY_NAME = "cache.key"

_KEYS: dict[Path, bytes] = {}


class NoKey(Exception):
    """The key file can neither be read nor created (the cache is then not used)."""


def cache_key(home: Path | None = None) -> bytes:
    """This user's secret cache key, created atomically on first use."""
    if home is None:
        try:
            home = anvil_home()
        except OSError as exc:
            raise NoKey(f"cannot create the anvil home folder: {exc}") from exc
    path = home / KEY_NAME
    key = _KEYS.get(path)
    if key is not None:
        return key
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = _create(path)
    except OSError as exc:
        raise NoKey(f"cannot read {path}: {exc}") from exc
    if len(key) < 32:
        raise NoKey(f"{path} is damaged (remove it; anvil makes a new one)")
    _KEYS[path] = key
    return key


def _create(path: Path) -> bytes:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32))
        try:
            os.link(tmp, path)  # atomic, and never replaces a key another process made first
        except FileExistsError:
            pass
        return path.read_bytes()
    except OSError as exc:
        raise NoKey(f"cannot create {path}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _tag(key: bytes, payload: bytes) -> bytes:
    return hashlib.blake2b(payload, key=key[:64], digest_size=TAG_BYTES).digest()


def seal(obj: Any, key: bytes) -> bytes:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return MAGIC + _tag(key, payload) + payload


def unseal(blob: bytes, key: bytes) -> Any | None:
    """The object, or None when the blob was not sealed with this key (never unpickled then)."""
    head = len(MAGIC) + TAG_BYTES
    if len(blob) < head or not blob.startswith(MAGIC):
        return None
    tag, payload = blob[len(MAGIC):head], blob[head:]
    if not hmac.compare_digest(tag, _tag(key, payload)):
        return None
    try:
        return pickle.loads(payload)
    except (EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError, IndexError):
        return None
