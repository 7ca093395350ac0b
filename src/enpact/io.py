"""Small file helpers: atomic writes and table reading with one-line errors."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from enpact.errors import EnpactError


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get the usual permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    """The process umask (read without changing it for good)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_table(path: str | Path, required: list[str], what: str, **kwargs) -> pd.DataFrame:
    """Read a tab-separated table and check that the required columns exist."""
    path = Path(path)
    if not path.exists():
        raise EnpactError(f"{what} not found: {path}")
    try:
        table = pd.read_csv(path, sep="\t", comment=None, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise EnpactError(f"{path}: cannot read {what} as a tab-separated table ({str(err).splitlines()[0]})")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise EnpactError(f"{path}: {what} lacks column '{missing[0]}' (has: {', '.join(map(str, table.columns[:8]))})")
    return table
