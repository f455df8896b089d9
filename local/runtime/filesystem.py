"""Lambda's read-only file system, held in a function's worker process.

"Lambda execution environment": a function's code (/var/task) and layers (/opt) are read-only, and so is the rest of
its file system but /tmp. A write elsewhere fails with EROFS ("[Errno 30] Read-only file system"). Here a Python
audit hook refuses, with that error, every open for writing and every change to the file system outside /tmp (and
the temporary directory the worker was given) that Python makes: the function's own writes, its libraries' and
importlib's bytecode cache (which, as on Lambda, then goes unwritten without failing the import). What a C library
writes without going through Python is not seen. On Lambda /tmp and the code never overlap; here a clone may sit under
/tmp, so the code, the layer and the interpreter's libraries (every import path, and the working directory, Lambda's
task root) stay read-only wherever they are.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

# The audit events of "Audit events table" that change the file system, and the positions of the paths they change.
_CHANGED_PATHS = {
    "open": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.link": (1,),
    "os.mkdir": (0,),
    "os.mkfifo": (0,),
    "os.mknod": (0,),
    "os.remove": (0,),
    "os.rename": (0, 1),
    "os.rmdir": (0,),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.utime": (0,),
}
LAMBDA_TMP = "/tmp"  # noqa: S108 - Lambda's writable directory, named as the function sees it
_WRITE_MODES = frozenset("wax+")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def refuse_writes_outside_tmp() -> None:
    writable = _real({LAMBDA_TMP, tempfile.gettempdir()})
    code = _real({os.getcwd(), sys.prefix, sys.base_prefix, *(entry or os.getcwd() for entry in sys.path)})
    read_only = tuple(root for root in code if not any(_within(tmp, root) for tmp in writable))
    sys.addaudithook(_refusing_writes(writable, read_only))


def _real(paths: set[str]) -> tuple[str, ...]:
    return tuple(sorted({os.path.realpath(path) for path in paths}))


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _refusing_writes(writable: tuple[str, ...], read_only: tuple[str, ...]) -> Callable[[str, tuple[Any, ...]], None]:
    def hook(event: str, args: tuple[Any, ...]) -> None:
        positions = _CHANGED_PATHS.get(event)
        if positions is None or (event == "open" and not _opens_for_writing(args)):
            return
        if event == "os.mkdir" and os.path.lexists(args[0]):
            return  # the kernel answers EEXIST before EROFS, and os.makedirs(exist_ok=True) relies on it
        for position in positions:
            path = args[position]
            if isinstance(path, int) or path is None:  # a file descriptor: its open was looked at
                continue
            if not _is_writable(os.fsdecode(path), writable, read_only):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    return hook


def _opens_for_writing(args: tuple[Any, ...]) -> bool:
    _, mode, flags = args
    return bool(_WRITE_MODES.intersection(mode or "")) or bool(flags & _WRITE_FLAGS)


def _is_writable(path: str, writable: tuple[str, ...], read_only: tuple[str, ...]) -> bool:
    real = os.path.realpath(path)
    if real == os.devnull:
        return True
    return any(_within(real, root) for root in writable) and not any(_within(real, root) for root in read_only)
