"""Atomic file replacement, shared by every package that writes results.

Run logs (``inl``, ``ratebound``), tables (``paper_repro``) and figures
(``figures``) are written through :func:`atomic_replace`, so an interrupted or
crashed writer leaves either the old file or the new one, never half of one.
It lives in the bottom package because every other package may import
:mod:`estimators`; nothing of the mathematics uses it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_replace(path: str | os.PathLike, *, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path``.

    The temporary file gets the permission bits of an existing ``path``, or
    those of an ordinary new file (0666 less the umask; :func:`tempfile.mkstemp`
    would make every output 0600). On a clean exit the data is flushed and
    fsynced and the file moved into place with :func:`os.replace`; on any
    exception (``KeyboardInterrupt`` included) the temporary file is removed
    and ``path`` is untouched.

    Parameters
    ----------
    path : path-like
        The file to write. Its directory must exist.
    mode : {"wb", "w"}
        Binary or text.
    encoding : str, optional
        Text encoding for ``mode="w"`` (UTF-8 when omitted).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        text = mode == "w"
        with os.fdopen(fd, mode, encoding=(encoding or "utf-8") if text else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
