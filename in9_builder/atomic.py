"""The one way this package writes files and folders: never a half-written output, never a window without one.

- :func:`atomic_write` (and ``_text`` / ``_bytes``): the content goes to a temporary sibling, is fsynced and
  renamed over the target (``os.replace`` is atomic on POSIX); on any failure the temporary file is removed
  and the target is untouched.
- :func:`check_overwrite`: the one "already exists" error, raised before any work.
- :func:`replace_folder`: a folder is built in a temporary sibling and swapped in: the old folder is renamed
  aside, the new one renamed in, and only then is the old one deleted; if the swap fails the old one is put
  back. At every moment either the old or the new complete folder is at the target path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import In9Error


def _shared_mode(mode: int = 0o666) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask  # mkstemp / mkdtemp make 0600 / 0700; outputs are shared like any written file


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform opens folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, _shared_mode())
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding=encoding))


def swap_folder(staging: Path, out: Path) -> None:
    """Put the complete folder ``staging`` at ``out``, replacing what is there, with rollback.

    The old ``out`` is renamed aside first and deleted only once ``staging`` is in place; if that rename
    fails the old folder is renamed back, so ``out`` is never missing.
    """
    staging, out = Path(staging), Path(out)
    if not out.exists():
        os.rename(staging, out)
        _fsync_dir(out.parent)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rmdir(retired)  # only its unique name is needed
    os.rename(out, retired)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(retired, out)
        raise
    _fsync_dir(out.parent)
    shutil.rmtree(retired, ignore_errors=True) if retired.is_dir() else retired.unlink(missing_ok=True)


def check_overwrite(path: str | os.PathLike, overwrite: bool, what: str = "output") -> None:
    """An existing ``path`` without ``overwrite`` is an :class:`In9Error` (a CLI names ``--overwrite``)."""
    if Path(path).exists() and not overwrite:
        raise In9Error(
            f"{what} {path} already exists; pass overwrite=True to replace it", argument="overwrite"
        )


@contextmanager
def replace_folder(out: str | os.PathLike, *, overwrite: bool = True, what: str = "output") -> Iterator[Path]:
    """Yield an empty temporary sibling of ``out`` to build into; on success it replaces ``out``.

    On an exception the temporary folder is removed and ``out`` is left as it was. With
    ``overwrite=False`` an existing ``out`` is an :class:`In9Error` before anything is written.
    """
    out = Path(out)
    check_overwrite(out, overwrite, what)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        os.chmod(staging, _shared_mode(0o777))
        yield staging
        swap_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
