"""Which loci to personalize: those whose window holds a GWAS signal (p below a threshold), a fine-mapped
credible-set variant, or overlaps a region. A study of 100,000 peaks then pays predictor passes only for the loci a
trait can use; the reference pass (training) still covers every locus."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from enpact.errors import EnpactError
from enpact.genome import bare_chrom, window_start

log = logging.getLogger(__name__)



def _positions(ids: np.ndarray, source: Path, column: str) -> pd.DataFrame:
    """(chrom, 0-based pos) of chrom_pos_... or chrom:pos... variant ids."""
    parsed = pd.Series(ids, dtype=str).str.extract(r"^(?P<chrom>[^_:]+)[_:](?P<pos>\d+)")
    if len(ids) and parsed["chrom"].isna().all():
        raise EnpactError(f"{source}: column {column} does not hold chrom_pos_ref_alt (or chrom:pos) ids, e.g. "
                          f"'{ids[0]}'; cannot place the variants")
    parsed = parsed.dropna()
    return pd.DataFrame({"chrom": parsed["chrom"].to_numpy(), "pos": parsed["pos"].astype(np.int64).to_numpy() - 1})


def read_gwas_signal(path: Path, snp_column: str, pvalue_column: str, threshold: float) -> pd.DataFrame:
    """Positions (chrom, pos 0-based) of GWAS variants with p below the threshold; ids parsed as chrom_pos_..."""
    from enpact.io import parse_float_column, read_text_columns

    columns = read_text_columns(path, [snp_column, pvalue_column])
    ids = columns[snp_column].to_numpy().astype(str)
    p = parse_float_column(columns[pvalue_column], path, pvalue_column)
    return _positions(ids[p < threshold], path, snp_column)


def read_credible_variants(path: Path) -> pd.DataFrame:
    """Positions of fine-mapped credible-set variants: a table with a `variant_id` column (chrom_pos_ref_alt or
    chrom:pos), or `chrom` and `pos` (1-based) columns."""
    from enpact.io import read_table

    table = read_table(path, [], "credible-set variants", dtype=str)
    if "variant_id" in table.columns:
        return _positions(table["variant_id"].to_numpy().astype(str), path, "variant_id")
    if {"chrom", "pos"} <= set(table.columns):
        pos = pd.to_numeric(table["pos"], errors="coerce")
        if pos.isna().any():
            raise EnpactError(f"{path}: line {int(np.flatnonzero(pos.isna().to_numpy())[0]) + 2}: pos "
                              f"'{table['pos'][pos.isna()].iloc[0]}' is not a position")
        return pd.DataFrame({"chrom": table["chrom"].to_numpy(), "pos": pos.astype(np.int64).to_numpy() - 1})
    raise EnpactError(f"{path}: needs a variant_id column (chrom_pos_ref_alt) or chrom and pos columns; found "
                      f"{', '.join(table.columns)}")


def read_regions(path: Path) -> pd.DataFrame:
    """BED regions (chrom, 0-based start, end); header and track lines skipped."""
    from enpact.io import open_text

    rows = []
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            try:
                rows.append((fields[0], int(fields[1]), int(fields[2])))
            except (IndexError, ValueError):
                raise EnpactError(f"{path}: line {number}: not a BED line (chrom start end): {line.strip()[:60]}") \
                    from None
    return pd.DataFrame(rows, columns=["chrom", "start", "end"])


def loci_near_signal(loci: pd.DataFrame, hits: pd.DataFrame, window_bp: int) -> np.ndarray:
    """Mask of loci whose window contains at least one position (chromosome names matched by bare_chrom)."""
    by_chrom = {c: np.sort(g["pos"].to_numpy()) for c, g in hits.groupby(hits["chrom"].map(bare_chrom))}
    mask = np.zeros(len(loci), dtype=bool)
    for i, (chrom, center) in enumerate(zip(loci["chrom"], loci["center"])):
        positions = by_chrom.get(bare_chrom(chrom))
        if positions is None:
            continue
        start = window_start(int(center), window_bp)
        lo, hi = np.searchsorted(positions, [start, start + window_bp])
        mask[i] = hi > lo
    return mask


def loci_in_regions(loci: pd.DataFrame, regions: pd.DataFrame, window_bp: int) -> np.ndarray:
    """Mask of loci whose window overlaps at least one region."""
    mask = np.zeros(len(loci), dtype=bool)
    by_chrom = {c: g for c, g in regions.groupby(regions["chrom"].map(bare_chrom))}
    for i, (chrom, center) in enumerate(zip(loci["chrom"], loci["center"])):
        group = by_chrom.get(bare_chrom(chrom))
        if group is None:
            continue
        start = window_start(int(center), window_bp)
        mask[i] = bool(((group["start"] < start + window_bp) & (group["end"] > start)).any())
    return mask


def select_loci(loci: pd.DataFrame, window_bp: int, gwas: pd.DataFrame | None = None,
                credible: pd.DataFrame | None = None, regions: pd.DataFrame | None = None) -> pd.DataFrame:
    """The loci any given criterion selects, with a `selected_by` column naming the criteria."""
    reasons = []
    for name, mask in (("gwas", loci_near_signal(loci, gwas, window_bp) if gwas is not None else None),
                       ("credible_set", loci_near_signal(loci, credible, window_bp) if credible is not None else None),
                       ("region", loci_in_regions(loci, regions, window_bp) if regions is not None else None)):
        if mask is not None:
            reasons.append(pd.Series(np.where(mask, name, ""), index=loci.index))
    if not reasons:
        raise EnpactError("no selection given: a GWAS with a p-value threshold, credible-set variants or regions")
    by = pd.concat(reasons, axis=1).apply(lambda row: ",".join(r for r in row if r), axis=1)
    return loci.assign(selected_by=by)[by != ""].reset_index(drop=True)
