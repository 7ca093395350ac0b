"""Loci: the table `locus_id, chrom, center (0-based), name, split` that every step works on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from enpact.errors import EnpactError
from enpact.io import read_table

LOCI_COLUMNS = ["locus_id", "chrom", "center", "name", "split"]
SPLITS = ("train", "valid", "test")


def read_loci(path: str | Path) -> pd.DataFrame:
    """Read and validate a loci table; `name` defaults to the id and `split` to 'none'."""
    loci = read_table(path, ["locus_id", "chrom", "center"], "loci table", dtype={"locus_id": str, "chrom": str})
    if loci.empty:
        raise EnpactError(f"{path}: loci table has no rows")
    centers = pd.to_numeric(loci["center"], errors="coerce")
    bad = centers.isna() | (centers < 0) | (centers % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise EnpactError(f"{path}: line {row + 2}: center '{loci['center'].iloc[row]}' is not a non-negative integer")
    loci["center"] = centers.astype(np.int64)
    duplicated = loci["locus_id"].duplicated()
    if duplicated.any():
        raise EnpactError(f"{path}: locus_id '{loci['locus_id'][duplicated].iloc[0]}' appears twice")
    if "name" not in loci.columns:
        loci["name"] = loci["locus_id"]
    if "split" not in loci.columns:
        loci["split"] = "none"
    loci["name"] = loci["name"].fillna(loci["locus_id"]).astype(str)
    loci["split"] = loci["split"].fillna("none").astype(str)
    extra = [c for c in loci.columns if c not in LOCI_COLUMNS]
    return loci[LOCI_COLUMNS + extra].reset_index(drop=True)


def write_loci(loci: pd.DataFrame, path: str | Path) -> None:
    """Write a loci table (tab-separated, the standard columns first)."""
    from enpact.io import atomic_path

    extra = [c for c in loci.columns if c not in LOCI_COLUMNS]
    with atomic_path(path) as tmp:
        loci[LOCI_COLUMNS + extra].to_csv(tmp, sep="\t", index=False)
