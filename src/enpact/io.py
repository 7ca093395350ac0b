"""Small file helpers: atomic writes, output folders and table reading with one-line errors."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from enpact.errors import EnpactError, not_a_folder, path_error

# errors that reading a damaged gzip file raises (gzip.BadGzipFile is an OSError, a short file an EOFError)
GZIP_READ_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


def _raise_path_error(err: OSError, path: Path, writing: bool | None = True, always: bool = False) -> None:
    """Re-raise an OSError about a user path as a one-line EnpactError; other OSErrors propagate unchanged unless
    `always` (for operations whose only input is the path, so that any failure is about that path)."""
    message = path_error(err, path, writing)
    if message is None and always:
        message = f"{path}: cannot create files here ({err.strerror or err}); choose another output folder"
    if message is None:
        raise err
    raise EnpactError(message) from err


def ensure_dir(path: str | Path) -> Path:
    """Create an output folder (and its parents); a file in the way or a read-only parent is one line."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.exists():
        raise EnpactError(not_a_folder(path))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _raise_path_error(err, path)
    return path


def check_writable_dir(path: str | Path) -> Path:
    """Create an output folder if needed and check that a file can be created in it (for checks up front)."""
    path = ensure_dir(path)
    try:
        fd, probe = tempfile.mkstemp(prefix=".enpact-write-check.", dir=path)
    except OSError as err:
        _raise_path_error(err, path, always=True)
    os.close(fd)
    os.unlink(probe)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` only if the block succeeds.

    A target that is a folder, a parent that cannot be created or written, and a failed rename are one-line
    EnpactErrors naming the target; nothing is left behind.
    """
    target = Path(path)
    if target.is_dir():
        raise EnpactError(f"{target}: is a folder, not a file; give a file name for this output "
                          "(or move the folder away)")
    ensure_dir(target.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    except OSError as err:
        _raise_path_error(err, target.parent, always=True)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get the usual permissions
        try:
            os.replace(tmp_path, target)
        except OSError as err:
            _raise_path_error(err, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    """The process umask (read without changing it for good)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def usual_dir_mode(path: str | Path) -> None:
    """Give a folder made by mkdtemp (0700) the permissions the user's umask gives new folders."""
    os.chmod(path, 0o777 & ~_umask())


def file_compression(path: str | Path) -> str:
    """'bgzf' (bgzip), 'gzip' (plain gzip) or 'none', from the file's first bytes whatever its name."""
    with open(path, "rb") as handle:
        head = handle.read(18)
    if head[:2] != b"\x1f\x8b":
        return "none"
    # BGZF: a gzip member with the FEXTRA flag and a 'BC' extra subfield holding the block size
    if len(head) >= 16 and head[3] & 4 and head[12:14] == b"BC":
        return "bgzf"
    return "gzip"


def gzip_error(path: str | Path, err: BaseException) -> EnpactError:
    """The one-line error for a damaged gzip file."""
    detail = str(err).splitlines()[0] if str(err) else type(err).__name__
    return EnpactError(f"{path}: truncated or corrupt gzip file ({detail}); re-download or re-compress it "
                       f"(`gzip -t {path}` checks a file)")


def read_table(path: str | Path, required: list[str], what: str, **kwargs) -> pd.DataFrame:
    """Read a tab-separated table and check that the required columns exist."""
    path = Path(path)
    if not path.exists():
        raise EnpactError(f"{what} not found: {path}")
    if path.is_dir():
        raise EnpactError(f"{path}: is a folder; give the {what} file")
    try:
        table = pd.read_csv(path, sep="\t", comment=None, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise EnpactError(f"{path}: cannot read {what} as a tab-separated table ({str(err).splitlines()[0]})")
    except GZIP_READ_ERRORS as err:
        raise gzip_error(path, err) from err
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise EnpactError(f"{path}: {what} lacks column '{missing[0]}' (has: {', '.join(map(str, table.columns[:8]))})")
    return table
