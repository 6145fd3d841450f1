"""Small shared helpers: atomic directory writes, hashing, cache location."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError

META_FILE = "simpair.json"  # what simpair adds to a model directory: threshold, task, dev metrics, config


def simpair_home() -> Path:
    """Where simpair caches converted models: ``$SIMPAIR_HOME`` or ``~/.cache/simpair``."""
    env = os.environ.get("SIMPAIR_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "simpair"


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str], overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling directory; rename it onto ``target`` on success.

    A crash or exception leaves ``target`` as it was (old content or absent), never half-written.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        _relax_permissions(tmp)
        if target.exists():
            if not overwrite:
                raise FileExistsError(target)
            if _exchange(tmp, target):  # one atomic step: target is always the old or the new directory
                shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old content
            else:  # no renameat2 here: two renames, with a moment in which target is absent
                old = target.parent / f".{target.name}.old-{os.getpid()}"
                os.rename(target, old)
                os.rename(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextlib.contextmanager
def dir_lock(target: str | os.PathLike[str], timeout: float = 600.0) -> Iterator[None]:
    """Hold an exclusive lock on ``target`` (a lock file beside it) so that writers take turns.

    A second writer waits up to ``timeout`` seconds, then fails with a message naming the lock.
    The lock lives beside the directory, not in it, because writes replace the whole directory.
    """
    import fcntl
    import time

    from .errors import SimpairError

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    key = str(lock_path.resolve())
    if key in _HELD:  # this process holds it already (a command locking around load + add)
        yield
        return
    with open(lock_path, "a+") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SimpairError(f"{target}: another process is writing it (lock {lock_path}); waited "
                                       f"{timeout:.0f} s; try again when it has finished") from None
                time.sleep(0.1)
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
            fcntl.flock(fh, fcntl.LOCK_UN)


_HELD: set[str] = set()


def _relax_permissions(root: Path) -> None:
    """mkdtemp/mkstemp create 0700/0600 entries; give the result the usual 0755/0644."""
    os.chmod(root, 0o755)
    for base, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(base, d), 0o755)
        for f in files:
            os.chmod(os.path.join(base, f), 0o644)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_writer(path) as fh:
        fh.write(text)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[Any]:
    """A text file to write into bit by bit: it appears at ``path`` (by a rename) only when the block ends
    without an error, and never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: str | os.PathLike[str], what: str = "a JSON object") -> dict[str, Any]:
    """A JSON object from a file simpair or the user wrote (a model's simpair.json, an index manifest): a
    damaged or hand-edited file gets an :class:`InputError` naming the file, line and what was expected
    (exit code 2), not a ``JSONDecodeError`` traceback."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(str(path), None, f"not UTF-8 text (byte {err.start}); expected {what}") from None
    except json.JSONDecodeError as err:
        raise InputError(str(path), err.lineno, f"not valid JSON ({err.msg}, column {err.colno}); "
                                                f"expected {what}") from None
    if not isinstance(value, dict):
        raise InputError(str(path), 1, f"holds a JSON {type(value).__name__}; expected {what}")
    return value


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def dir_size(path: str | os.PathLike[str]) -> int:
    """Total size in bytes of the regular files below ``path``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total


def human_size(n: float) -> str:
    """``123456789`` → ``'117.7 MB'``."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GB"


def check_out_dir(out: str | Path) -> None:
    """Refuse to replace a directory that is not a previous simpair model (it would be deleted)."""
    out_dir = Path(out)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / META_FILE).is_file())):
        raise ConfigError(f"{out_dir}: exists and is not a simpair model; refusing to replace it (choose another --out)")


def require_extra(module: str, extra: str, what: str) -> Any:
    """``module`` imported, or a clear error naming the extra that installs it (``pip install 'simpair[extra]'``)."""
    import importlib

    from .errors import SimpairError

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise SimpairError(f"{what} needs the {module} package, which is not installed: "
                           f"pip install 'simpair[{extra}]'") from err
