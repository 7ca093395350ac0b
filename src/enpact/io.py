"""File helpers: atomic outputs (one file, several files, a folder), output folders, compression detection and
delimited text tables (plain or gzip, read as text columns, parsed to numbers) with one-line errors."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from enpact.errors import EnpactError, not_a_folder, path_error

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

# errors that reading a damaged gzip file raises (gzip.BadGzipFile is an OSError, a short file an EOFError)
GZIP_READ_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
# values that mean "missing" in the text tables we read (PredictDB, GWAS, covariances)
MISSING_TOKENS = ["NA", "NaN", "nan", "", ".", "\\N", "NULL", "null"]


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


@contextlib.contextmanager
def atomic_paths(paths: Sequence[str | Path]) -> Iterator[list[Path]]:
    """Temporary paths for several outputs, renamed onto their targets together only if the block succeeds."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_path(path)) for path in paths]


@contextlib.contextmanager
def atomic_directory(path: str | Path, last: Iterable[str] = ()) -> Iterator[Path]:
    """Yield a fresh folder beside `path`; if the block succeeds its files move into `path` (a new folder by one
    rename, an existing one file by file, the `last` names last, so that a reader who sees them sees the rest).
    Nothing is left behind on failure."""
    target = Path(path)
    ensure_dir(target.parent)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as err:
        _raise_path_error(err, target.parent, always=True)
    usual_dir_mode(staging)   # it may become the output folder: permissions as the user's umask says
    try:
        yield staging
        if target.exists() and not target.is_dir():
            raise EnpactError(not_a_folder(target))
        if not target.exists():
            try:
                os.rename(staging, target)
                return
            except OSError:
                ensure_dir(target)
        last = list(last)
        names = sorted(p.name for p in staging.iterdir())
        for name in [n for n in names if n not in last] + [n for n in last if n in names]:
            os.replace(staging / name, target / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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


# ---------------------------------------------------------------------------------------------------------
# delimited text tables


def is_gzip(path: str | Path) -> bool:
    """Whether a file is gzip or bgzip compressed (from its first bytes, whatever its name)."""
    return file_compression(path) != "none"


def open_text(path: str | Path, newline: str | None = ""):
    """Open a plain or gzip/bgzip text file for reading (compression from the first bytes, whatever the name;
    `newline` as for open: "" keeps line endings as written, None translates them)."""
    if is_gzip(path):
        return gzip.open(path, "rt", newline=newline)
    return open(path, newline=newline)


def sniff_separator(path: str | Path, n_lines: int = 200) -> str | None:
    """A single-character separator that splits the first lines consistently (tab or space), else None."""
    try:
        with open_text(path) as handle:
            lines = [line.rstrip("\r\n") for _, line in zip(range(n_lines), handle)]
    except GZIP_READ_ERRORS as err:
        raise gzip_error(path, err) from err
    except (OSError, UnicodeDecodeError) as err:
        raise EnpactError(f"{path}: cannot read file ({err})") from err
    lines = [line for line in lines if line]
    if not lines:
        raise EnpactError(f"{path}: file is empty; expected a header line")
    fields = [line.split("\t") for line in lines]
    widths = {len(f) for f in fields}
    if len(widths) == 1 and widths.pop() > 1 and all(v == v.strip() for f in fields for v in f):
        return "\t"
    regular = all(line == line.strip() and "  " not in line and "\t" not in line for line in lines)
    widths = {len(line.split(" ")) for line in lines}
    if regular and len(widths) == 1 and widths.pop() > 1:
        return " "
    return None


def header_columns(path: str | Path, separator: str | None) -> list[str]:
    """The column names of a delimited text file's first line."""
    try:
        with open_text(path) as handle:
            first = handle.readline().rstrip("\r\n")
    except GZIP_READ_ERRORS as err:
        raise gzip_error(path, err) from err
    except (OSError, UnicodeDecodeError) as err:
        raise EnpactError(f"{path}: cannot read file ({err})") from err
    return first.split(separator) if separator else first.split()


def collect_or_explain(frame: "pl.LazyFrame", path: str | Path) -> "pl.DataFrame":
    """Collect a scan of `path` (streaming); a damaged gzip file or an unreadable file is a one-line error.

    Polars reports a truncated or corrupt gzip stream as a plain OSError ("unexpected end of file", "corrupt gzip
    stream does not have a matching checksum"), not as a PolarsError.
    """
    try:
        return frame.collect(engine="streaming")
    except (*GZIP_READ_ERRORS, OSError) as err:
        if is_gzip(path):
            raise gzip_error(path, err) from err
        raise EnpactError(f"{path}: cannot read file ({str(err).splitlines()[0] if str(err) else err!r})") from err


def read_text_columns(
    path: str | Path,
    columns: Sequence[str],
    separator: str | None = None,
    keep: tuple[str, Iterable[str]] | None = None,
    chunk_rows: int = 1_000_000,
) -> "pl.DataFrame":
    """Read some columns of a delimited (plain or gzip) file as text, optionally keeping only rows whose
    `keep[0]` value is in `keep[1]`, so memory stays bounded by the kept rows.

    With `separator=None` the file is whitespace-separated: a consistent single tab or space is read with the
    fast reader, anything else (runs of spaces, as in PLINK output) with a slower any-whitespace reader.
    """
    import polars as pl

    path = Path(path)
    if not path.exists():
        raise EnpactError(f"{path}: file not found")
    fast_separator = separator if separator is not None else sniff_separator(path)
    present = header_columns(path, fast_separator)
    missing = [c for c in columns if c not in present]
    if missing:
        shown = ", ".join(present[:12])
        raise EnpactError(f"{path}: no column '{missing[0]}' in the header (columns: {shown}); "
                          "check the column options")
    wanted = pl.Series("keep", list(keep[1]), dtype=pl.Utf8) if keep else None
    if fast_separator is not None:
        try:
            frame = pl.scan_csv(path, separator=fast_separator, infer_schema=False, quote_char=None)
            frame = frame.select(list(columns))
            if keep:
                frame = frame.filter(pl.col(keep[0]).is_in(wanted.implode()))
            return collect_or_explain(frame, path)
        except pl.exceptions.PolarsError as err:
            log.info("%s: fast reader failed (%s); using the slower reader", path, str(err).splitlines()[0][:80])
    return _read_text_columns_slowly(path, columns, separator, keep[0] if keep else None, wanted, chunk_rows)


def _read_text_columns_slowly(
    path: Path, columns: Sequence[str], separator: str | None, keep_column: str | None, wanted: "pl.Series | None",
    chunk_rows: int,
) -> "pl.DataFrame":
    """Fallback reader (pandas, in chunks) for irregular whitespace or rows the fast reader rejects."""
    import polars as pl

    wanted_index = pd.Index(wanted.to_list()) if wanted is not None else None
    parts = []
    try:
        reader = pd.read_csv(path, sep=separator if separator is not None else r"\s+", usecols=list(columns),
                             dtype=str, keep_default_na=False, chunksize=chunk_rows, on_bad_lines="skip",
                             compression="gzip" if is_gzip(path) else None, quoting=3)
        for chunk in reader:
            if keep_column is not None:
                chunk = chunk[chunk[keep_column].isin(wanted_index)]
            parts.append(chunk)
    except (*GZIP_READ_ERRORS, OSError) as err:
        if is_gzip(path):
            raise gzip_error(path, err) from err
        raise EnpactError(f"{path}: cannot read file ({str(err).splitlines()[0]})") from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise EnpactError(f"{path}: cannot parse file ({str(err).splitlines()[0]})") from err
    if not parts:
        return pl.DataFrame({c: pl.Series(c, [], dtype=pl.Utf8) for c in columns})
    table = pd.concat(parts, ignore_index=True)
    return pl.DataFrame({c: pl.Series(c, table[c].to_numpy(dtype=object), dtype=pl.Utf8) for c in columns})


def parse_float_column(values: "pl.Series", path: str | Path, column: str, ids: "pl.Series | None" = None
                       ) -> np.ndarray:
    """Text to float64: NA-like tokens become NaN, decimal commas are accepted, anything else is an error."""
    import polars as pl

    text = values.str.strip_chars()
    numbers = text.cast(pl.Float64, strict=False)
    failed = numbers.is_null() & ~(text.is_null() | text.is_in(pl.Series(MISSING_TOKENS).implode()))
    if failed.any():
        comma = text.str.replace(r"^([-+]?[0-9]*),([0-9]+([eE][-+]?[0-9]+)?)$", "${1}.${2}")
        comma = comma.cast(pl.Float64, strict=False)
        numbers = pl.select(pl.when(failed).then(comma).otherwise(numbers)).to_series()
        bad = failed & numbers.is_null()
        if bad.any():
            first = int(bad.arg_true()[0])
            where = f" for {ids[first]}" if ids is not None else f" in data row {first + 1}"
            raise EnpactError(f"{path}: column '{column}' has a non-numeric value '{values[first]}'{where}; "
                              "fix or remove that row")
    return numbers.fill_null(float("nan")).to_numpy().astype(np.float64)


def write_gzip_table(path: str | Path, table: "pl.DataFrame", level: int = 4, block_rows: int = 250_000) -> None:
    """Write a table space-separated with a header as reproducible gzip (mtime 0, no name); blocks of rows are
    compressed in parallel as gzip members, which every gzip reader concatenates."""
    header = (" ".join(table.columns) + "\n").encode()

    def compress(start: int) -> bytes:
        block = table.slice(start, block_rows).write_csv(separator=" ", include_header=False, quote_style="never",
                                                         line_terminator="\n").encode()
        return gzip.compress(header + block if start == 0 else block, compresslevel=level, mtime=0)

    starts = range(0, max(table.height, 1), block_rows)
    workers = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
    with open(path, "wb") as handle, ThreadPoolExecutor(max_workers=workers) as pool:
        for member in pool.map(compress, starts):
            handle.write(member)
