"""Feature matrices in the PredictDB expression layout: `NAME IND1 IND2 ...`, one row per feature."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from enpact.errors import EnpactError
from enpact.io import GZIP_READ_ERRORS, atomic_path, gzip_error, open_text

log = logging.getLogger(__name__)


def read_expression(path: str | Path) -> pd.DataFrame:
    """Read a features x samples matrix (tab or whitespace separated, optionally gzipped), validated.

    NaN (empty, NA, NaN) values are allowed and ignored by the per-feature mean; samples with no value at all are
    dropped with a warning; duplicate feature ids or sample names, non-numeric and infinite values are errors.
    """
    path = Path(path)
    if not path.exists():
        raise EnpactError(f"expression matrix not found: {path}")
    header, header_line = _header_fields(path)
    separator = "\t" if "\t" in header_line else r"\s+"
    try:
        table = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, engine="python", header=None,
                            skiprows=1)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise EnpactError(f"{path}: cannot read the expression matrix ({str(err).splitlines()[0]})")
    except GZIP_READ_ERRORS as err:
        raise gzip_error(path, err) from err
    if table.shape[1] == len(header) + 1:
        header = ["NAME", *header]   # R's write.table: the header has no field for the row names
    if table.shape[1] != len(header):
        raise EnpactError(f"{path}: the header has {len(header)} fields and line 2 has {table.shape[1]}; give a "
                          "header 'NAME IND1 IND2 ...' with one field per column")
    if table.shape[1] < 2:
        raise EnpactError(f"{path}: expected a header 'NAME IND1 IND2 ...' and at least one sample column")
    ids = table.iloc[:, 0].str.replace(r'^"(.*)"$', r"\1", regex=True)   # R's write.table quotes row names
    duplicated = ids.duplicated()
    if duplicated.any():
        raise EnpactError(f"{path}: feature '{ids[duplicated].iloc[0]}' appears twice; make feature ids unique")
    duplicated_samples = pd.Index(header[1:])[pd.Index(header[1:]).duplicated()]
    if len(duplicated_samples):
        raise EnpactError(f"{path}: sample '{duplicated_samples[0]}' appears twice in the header")
    samples = header[1:]
    raw = table.iloc[:, 1:]
    missing = raw.isin(["", "NA", "NaN", "nan", "."])
    values = raw.mask(missing).apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & ~missing
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise EnpactError(
            f"{path}: line {row + 2}, sample {samples[col]}: value '{raw.iat[row, col]}' is not a number"
        )
    numbers = values.to_numpy(dtype=np.float64)
    infinite = np.isinf(numbers)
    if infinite.any():   # a mean, a correlation and a model would all take it silently
        row, col = np.argwhere(infinite)[0]
        raise EnpactError(f"{path}: line {row + 2}, feature {ids.iloc[row]}, sample {samples[col]}: value "
                          f"'{raw.iat[row, col]}' is infinite ({int(infinite.sum())} infinite values); give finite "
                          "values, or NA for a missing one")
    matrix = pd.DataFrame(numbers, index=ids.astype(str).to_numpy(), columns=samples)
    matrix.index.name = "NAME"
    empty_samples = matrix.columns[matrix.isna().all(axis=0)]
    if len(empty_samples):
        log.warning("%s: dropping %d samples without any value (e.g. %s)", path, len(empty_samples), empty_samples[0])
        matrix = matrix.drop(columns=empty_samples)
    if matrix.shape[1] == 0:
        raise EnpactError(f"{path}: no sample has any value")
    n_nan = int(matrix.isna().to_numpy().sum())
    if n_nan:
        log.warning("%s: %d missing values are ignored in per-feature means", path, n_nan)
    return matrix


def _header_fields(path: Path) -> tuple[list[str], str]:
    """The header line's fields and the raw line, read directly (pandas renames duplicated column names)."""
    if path.is_dir():
        raise EnpactError(f"{path}: is a folder; give the expression matrix file")
    try:
        with open_text(path, newline=None) as handle:
            line = handle.readline()
    except GZIP_READ_ERRORS as err:
        raise gzip_error(path, err) from err
    except UnicodeDecodeError as err:
        raise EnpactError(f"{path}: the expression matrix is not text ({err.reason}); give a tab-separated matrix "
                          "(gzip allowed, named .gz)") from err
    text = line.rstrip("\r\n")
    fields = text.split("\t") if "\t" in text else text.split()
    # pandas' to_csv leaves the row-name field empty; R's write.table quotes names ("IND1")
    return [f.strip().removeprefix('"').removesuffix('"') for f in fields], line


def feature_means(matrix: pd.DataFrame) -> pd.Series:
    """Mean across samples per feature (the EnPACT training target); features without values give NaN."""
    return matrix.mean(axis=1, skipna=True)


MIN_BETWEEN_FEATURE_RATIO = 0.1


def check_between_feature_signal(matrix: pd.DataFrame, source: str | Path) -> None:
    """The EnPACT model learns feature levels across loci: a matrix normalised per feature (inverse-normal, centred or
    scaled per gene, as PredictDB/GTEx expression files usually are) has no between-feature signal left to learn.
    Refused when the SD of the feature means is under a tenth of the typical within-feature SD."""
    means = matrix.mean(axis=1, skipna=True).dropna()
    within = matrix.std(axis=1, skipna=True).dropna()
    if len(means) < 3 or not len(within):
        return
    between, typical = float(means.std()), float(within.median())
    if typical > 0 and between < MIN_BETWEEN_FEATURE_RATIO * typical:
        raise EnpactError(
            f"{source}: the feature means hardly differ (SD {between:.3g} across features, {typical:.3g} within a "
            "feature): the matrix looks normalised per feature (inverse-normal or centred per gene); EnPACT learns "
            "levels between features and needs e.g. log TPM or log CPM before per-feature normalisation")


def write_expression(matrix: pd.DataFrame, path: str | Path) -> None:
    """Write a features x samples matrix in the PredictDB layout (tab-separated, header NAME + samples)."""
    out = matrix.copy()
    out.index.name = "NAME"
    with atomic_path(path) as tmp:
        out.to_csv(tmp, sep="\t", float_format="%.6g", na_rep="NA")
