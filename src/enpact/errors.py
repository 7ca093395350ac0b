"""User-facing errors: one line, naming the file and record, never a traceback."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


class EnpactError(Exception):
    """An error caused by user input or environment; the CLI prints it as one line and exits 1."""


# errno values of OSErrors that are about a path the user chose (an output folder that is read-only, a file
# where a folder is expected, a full disk), not about a bug; `path_error` turns them into one line.
USER_PATH_ERRNOS = frozenset(
    code for code in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST,
                      errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.ENAMETOOLONG)
    if code is not None
)


def _blocking_file(path: Path) -> Path:
    """The first component of `path` that exists but is not a folder (what makes ENOTDIR), else `path`."""
    for part in reversed([path, *path.parents]):
        if os.path.exists(part) and not os.path.isdir(part):
            return part
    return path


def not_a_folder(path: str | Path) -> str:
    """The line for a file standing where an output folder is needed."""
    return f"{path}: is a file, not a folder; choose another output folder or move that file away"


def path_error(err: OSError, path: str | Path | None = None, writing: bool | None = None) -> str | None:
    """One line `PATH: what is wrong; what to do` for an OSError about a user path, or None for any other.

    `path` defaults to the error's own file name (for a rename, the destination). `writing` says whether the
    path is an output (the advice differs for inputs); None guesses: an existing file that cannot be read is an
    input, anything else an output.
    """
    if err.errno not in USER_PATH_ERRNOS:
        return None
    if path is None:
        path = err.filename2 if err.filename2 is not None else err.filename
        if path is None:
            return None
    path = Path(os.fsdecode(path))
    code = err.errno
    if writing is None:
        writing = not (os.path.isfile(path) and not os.access(path, os.R_OK))
    if code in (errno.EACCES, errno.EPERM):
        if writing:
            existing = next((p for p in [path, *path.parents] if os.path.exists(p)), path)
            return (f"{existing}: permission denied; make the output folder writable (chmod u+w) or choose another "
                    "output folder")
        return f"{path}: permission denied; make it readable (chmod u+r) or copy it somewhere readable"
    if code == errno.EROFS:
        return f"{path}: read-only file system; choose an output folder on a writable file system"
    if code == errno.ENOTDIR:
        blocker = _blocking_file(path)
        if blocker != path:
            return not_a_folder(blocker)
        return f"{path}: a part of this path is not a folder; check the path"
    if code == errno.EISDIR:
        if writing:
            return f"{path}: is a folder, not a file; give a file name for this output (or move the folder away)"
        return f"{path}: is a folder, not a file; give the path of the file inside it"
    if code == errno.EEXIST:
        if os.path.exists(path) and not os.path.isdir(path):
            return not_a_folder(path)
        return f"{path}: already exists; move it away or choose another output path"
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        folder = next((p for p in [path, *path.parents] if os.path.isdir(p)), path)
        try:
            free = f" ({shutil.disk_usage(folder).free / 2**20:,.0f} MiB free there now)"
        except OSError:
            free = ""
        return (f"{path}: no space left on the device (or disk quota exceeded){free}; free some space or write "
                "elsewhere, then run the same command again (finished steps are kept; nothing was half-written)")
    if code == errno.ENAMETOOLONG:
        return f"{path}: file name too long; choose a shorter path"
    return None
