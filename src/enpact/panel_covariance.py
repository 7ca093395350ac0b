"""The SNP covariance of model SNPs across a reference panel VCF, as S-PrediXcan and S-MultiXcan read it
(`enpact covariance`): `write_panel_covariance` finds the weighted SNPs of any PredictDB databases (per gene, the
union over the databases) in the panel, by position and alleles, and writes per gene their dosage covariance across
the panel's individuals in the format, order and estimator of the covariance file `enpact.predictdb.build_database`
writes, so that either file serves MetaXcan's SPrediXcan.py and SMulTiXcan.py and `enpact twas` and `multixcan`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import polars as pl

from enpact.errors import EnpactError
from enpact.genome import natural_chromosome_key
from enpact.io import atomic_path
from enpact.predictdb import SNP_KEYS, VARID_POSITION, _connect, _query, quote_identifier, write_covariance

if TYPE_CHECKING:
    from enpact.variants import VcfReader

log = logging.getLogger(__name__)

PANEL_REGION_GAP = 20_000  # model SNPs closer than this are read from the panel in one region
PANEL_REGION_SPAN = 500_000  # ... up to this span, so that one read holds a bounded number of records


@dataclass(frozen=True)
class PanelMatch:
    """Model SNPs placed on a reference panel: per (gene, SNP) entry, its panel dosage row (-1: absent)."""

    entries: pd.DataFrame  # gene, key, chrom, pos, ref, eff, row, order, swapped, too_missing
    copies: np.ndarray  # (n_rows, n_samples) int8: copies of each entry's effect allele, -1 for a missing call
    n_samples: int
    missing_calls: int = 0   # missing genotype calls in the rows, mean-imputed

    def imputed(self, rows: np.ndarray) -> np.ndarray:
        """Dosages (float64) of these rows, a missing call given its row's mean over the called individuals (int8
        copies are kept, a float matrix of every row would take 8 times the memory)."""
        from enpact.variants import impute_missing_dosages

        return impute_missing_dosages(self.copies[np.asarray(rows, dtype=np.int64)])

    @property
    def dosages(self) -> np.ndarray:
        """Every row's dosages, missing calls mean-imputed (float64)."""
        return self.imputed(np.arange(len(self.copies)))


def model_snps(path: str | Path, snp_key: str) -> pd.DataFrame:
    """The weighted SNPs of a database's genes (those in `extra`): gene, key, varID, ref, eff in weights order; a
    (gene, key) weighted twice keeps its last row, as SPrediXcan.py does."""
    if snp_key not in SNP_KEYS:
        raise EnpactError(f"--model-db-snp-key must be varID or rsid, not '{snp_key}'")
    path = Path(path)
    connection = _connect(path)
    try:
        genes = {row[0] for row in _query(path, connection, "SELECT gene FROM extra", "extra")}
        rows = _query(path, connection, f"SELECT gene, {quote_identifier(snp_key)}, varID, ref_allele, eff_allele "
                      "FROM weights", "weights")
    finally:
        connection.close()
    snps = pd.DataFrame(rows, columns=["gene", "key", "varID", "ref", "eff"], dtype=object)
    snps = snps[snps["gene"].isin(genes) & snps["key"].notna()]
    snps = snps.assign(key=snps["key"].astype(str), ref=snps["ref"].fillna("").astype(str).str.upper(),
                       eff=snps["eff"].fillna("").astype(str).str.upper())
    return snps.drop_duplicates(["gene", "key"], keep="last").reset_index(drop=True)


def union_model_snps(paths: Sequence[str | Path], snp_key: str) -> pd.DataFrame:
    """Per gene, the union of the databases' weighted SNPs (gene, key, varID, ref, eff); a SNP that two databases
    give different alleles for the same gene is an error (its covariance has one orientation)."""
    tables = [model_snps(path, snp_key).assign(source=str(path)) for path in paths]
    stacked = pd.concat(tables, ignore_index=True)
    first = stacked.drop_duplicates(["gene", "key"], keep="first")
    clash = stacked.merge(first, on=["gene", "key"], suffixes=("", "_first"))
    clash = clash[(clash["ref"] != clash["ref_first"]) | (clash["eff"] != clash["eff_first"])]
    if len(clash):
        row = clash.iloc[0]
        raise EnpactError(f"{row['source']}: gene {row['gene']} SNP {row['key']} has alleles {row['ref']}/{row['eff']} "
                          f"(ref/effect) but {row['ref_first']}/{row['eff_first']} in {row['source_first']}; the "
                          "databases must agree on each SNP's effect allele")
    return first.drop(columns="source").reset_index(drop=True)


def _panel_regions(positions: np.ndarray) -> list[tuple[int, int]]:
    """Sorted 1-based positions grouped into regions (first, last) to read from the panel."""
    regions: list[tuple[int, int]] = []
    for pos in positions.tolist():
        if regions and pos - regions[-1][1] <= PANEL_REGION_GAP and pos - regions[-1][0] <= PANEL_REGION_SPAN:
            regions[-1] = (regions[-1][0], pos)
        else:
            regions.append((pos, pos))
    return regions


def match_panel(snps: pd.DataFrame, vcf: VcfReader, snp_key: str, max_missing: float = 0.1) -> PanelMatch:
    """Find every model SNP in the panel and count copies of its effect allele per individual.

    The panel is read around the SNPs' varID positions (chrom_pos_...). A record matches when its alleles hold
    the SNP's two alleles and, with rsid keys, its ID is the rsid; the dosage is that of the effect allele, so a
    panel whose REF/ALT are swapped relative to the model gives 2 - d. As in linearization, a missing call gets the
    site's mean dosage over the called individuals, and a record with more missing calls than `max_missing` (a
    fraction) is left out: its SNPs count as absent (`too_missing`).
    """
    from enpact.variants import allele_copies, applied_alleles, missing_genotypes

    parts = snps["varID"].astype(str).str.extract(VARID_POSITION)
    entries = snps.assign(chrom=parts[0], pos=pd.to_numeric(parts[1]).astype("Int64"), row=-1, order=-1,
                          swapped=False, too_missing=False).reset_index(drop=True)
    at_site: dict[tuple[str, int], list[int]] = {}
    for index, (chrom, pos) in enumerate(zip(entries["chrom"], entries["pos"])):
        if not pd.isna(pos):
            at_site.setdefault((chrom, int(pos)), []).append(index)
    row_of: dict[tuple[int, int], int] = {}
    rows: list[np.ndarray] = []
    found_row = entries["row"].to_numpy().copy()
    order = entries["order"].to_numpy().copy()
    swapped = entries["swapped"].to_numpy().copy()
    dropped = entries["too_missing"].to_numpy().copy()
    missing_calls = 0
    refs, effs, keys = entries["ref"].tolist(), entries["eff"].tolist(), entries["key"].tolist()
    n_samples = len(vcf.samples)
    ordinal = 0
    chroms = sorted({c for c, _ in at_site}, key=natural_chromosome_key)
    for chrom in chroms:
        positions = np.array(sorted(p for c, p in at_site if c == chrom), dtype=np.int64)
        for first, last in _panel_regions(positions):
            table = vcf.read(chrom, first - 1, last)
            applied = applied_alleles(table, keep_missing=True) if len(table) else None
            for v in range(len(table)):
                ordinal += 1
                wanted = at_site.get((chrom, int(table.pos[v]) + 1))
                if not wanted:
                    continue
                genotypes = applied[v].reshape(n_samples, 2)
                missing = missing_genotypes(genotypes)
                rate = float(missing.mean())
                alleles = [table.ref[v], *table.alts[v]]
                ids = table.ids[v].split(";")
                for entry in wanted:
                    if found_row[entry] >= 0 or refs[entry] not in alleles or effs[entry] not in alleles:
                        continue
                    if snp_key == "rsid" and keys[entry] not in ids:
                        continue
                    if rate > max_missing or rate == 1.0:
                        dropped[entry] = True
                        continue
                    allele = alleles.index(effs[entry])
                    if (ordinal, allele) not in row_of:
                        row_of[(ordinal, allele)] = len(rows)
                        rows.append(allele_copies(genotypes, allele))
                        missing_calls += int(missing.sum())
                    found_row[entry] = row_of[(ordinal, allele)]
                    # the order linearization gives a locus's SNPs: panel records in file order, ALT alleles in order
                    order[entry] = ordinal * 256 + max(allele, alleles.index(refs[entry]))
                    swapped[entry] = allele == 0
    # an entry found at another record of its position (a split multi-allelic site) is not too missing
    entries = entries.assign(row=found_row, order=order, swapped=swapped, too_missing=dropped & (found_row < 0))
    copies = np.stack(rows) if rows else np.zeros((0, n_samples), dtype=np.int8)
    return PanelMatch(entries=entries, copies=copies, n_samples=n_samples, missing_calls=missing_calls)


def panel_covariance_table(match: PanelMatch) -> pl.DataFrame:
    """Covariance rows (GENE RSID1 RSID2 VALUE) of each gene's SNPs found in the panel: genes sorted by id, SNPs in
    panel order, upper triangle with diagonal, as `build_database` writes them."""
    found = match.entries[match.entries["row"] >= 0]
    found = found.iloc[np.lexsort((found["order"].to_numpy(), found["gene"].to_numpy(dtype=str)))]
    genes, first_rows = np.unique(found["gene"].to_numpy(dtype=str), return_index=True)
    bounds = np.append(first_rows, len(found))
    keys = found["key"].to_numpy(dtype=object)
    dosage_rows = found["row"].to_numpy()
    gene_column, first_column, second_column, values = [], [], [], []
    for gene, start, end in zip(genes.tolist(), bounds[:-1], bounds[1:]):
        # np.cov of a samples x SNPs float matrix laid out as linearization lays it out, so that the values are
        # bit for bit those of the database step for the same panel and samples
        selected = np.ascontiguousarray(match.imputed(dosage_rows[start:end]).T)
        k = end - start
        matrix = np.cov(selected, rowvar=False, ddof=1).reshape(k, k)
        i, j = np.triu_indices(k)
        gene_column.append(np.full(len(i), gene, dtype=object))
        first_column.append(keys[start:end][i])
        second_column.append(keys[start:end][j])
        values.append(matrix[i, j])

    def joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    return pl.DataFrame(
        {"GENE": joined(gene_column, object), "RSID1": joined(first_column, object),
         "RSID2": joined(second_column, object), "VALUE": joined(values, np.float64)},
        schema={"GENE": pl.Utf8, "RSID1": pl.Utf8, "RSID2": pl.Utf8, "VALUE": pl.Float64},
    )


def _log_panel_match(match: PanelMatch, vcf_path: Path, snp_key: str, max_missing: float) -> None:
    """What was found where, in distinct SNPs and genes; nothing found is an error."""
    entries = match.entries
    keys = entries["key"]
    found = entries["row"].to_numpy() >= 0
    placed = entries["pos"].notna().to_numpy()
    swapped = entries["swapped"].to_numpy(dtype=bool)
    too_missing = entries["too_missing"].to_numpy(dtype=bool)
    n_genes = entries["gene"].nunique()
    n_genes_found = entries.loc[found, "gene"].nunique()
    if not found.any() and too_missing.any():
        raise EnpactError(f"{vcf_path}: every model SNP found in the panel has more than {max_missing:g} of its "
                          "genotype calls missing; use a better-called panel or raise --max-missing")
    if not found.any():
        example = entries["varID"].iloc[0]
        raise EnpactError(f"{vcf_path}: none of the databases' {keys.nunique()} SNPs (e.g. {example}, key "
                          f"{snp_key}) is in the panel with the model's alleles; check the genome build, chromosome "
                          "naming and --model-db-snp-key")
    log.info("%s: %d individuals; %d of %d model SNPs found (%d with REF/ALT swapped relative to the model) for "
             "%d of %d genes", vcf_path, match.n_samples, keys[found].nunique(), keys.nunique(),
             keys[found & swapped].nunique(), n_genes_found, n_genes)
    if (~placed).any():
        log.warning("%d model SNPs have a varID without a position (chrom_pos_...) and cannot be placed on the panel; "
                    "they are left out", keys[~placed].nunique())
    if match.missing_calls:
        log.info("%s: %d missing genotype calls of model SNPs were mean-imputed (the site's mean dosage over the "
                 "called individuals)", vcf_path, match.missing_calls)
    if too_missing.any():
        log.warning("%d model SNPs of %d genes have more than %g of their genotype calls missing in the panel and are "
                    "left out of their gene's covariance, e.g. %s", keys[too_missing].nunique(),
                    entries.loc[too_missing, "gene"].nunique(), max_missing, keys[too_missing].iloc[0])
    absent = placed & ~found & ~too_missing
    if absent.any():
        log.warning("%d model SNPs of %d genes are not in the panel (or not with the model's alleles%s) and are left "
                    "out of their gene's covariance, e.g. %s", keys[absent].nunique(),
                    entries.loc[absent, "gene"].nunique(), ", or under another rsid" if snp_key == "rsid" else "",
                    keys[absent].iloc[0])
    if n_genes_found < n_genes:
        log.warning("%d genes have no SNP in the panel and no covariance rows", n_genes - n_genes_found)


def write_panel_covariance(
    model_db_paths: Sequence[str | Path],
    vcf_path: str | Path,
    out: str | Path,
    snp_key: str = "varID",
    samples: Sequence[str] | None = None,
    max_missing: float = 0.1,
) -> Path:
    """Write the SNP covariance of the databases' model SNPs (per gene, the union over databases) across the panel's
    individuals, in the format, order and estimator of the database step's covariance file (mean-imputed dosages;
    SNPs with more than `max_missing` of their calls missing left out)."""
    from enpact.variants import MISSING_IN_DOSAGES, VcfReader

    if not model_db_paths:
        raise EnpactError("give at least one model database (--model-db-path)")
    snps = union_model_snps(model_db_paths, snp_key)
    if snps.empty:
        raise EnpactError(f"{model_db_paths[0]}: the model databases have no weighted SNP; nothing to compute")
    vcf = VcfReader(vcf_path, list(samples) if samples else None, allow_unphased=True)
    if len(vcf.samples) < 2:
        raise EnpactError(f"{vcf_path}: {len(vcf.samples)} individual selected; a covariance needs at least 2")
    try:
        match = match_panel(snps, vcf, snp_key, max_missing)
    finally:
        vcf.close()
    vcf.counts.log(str(vcf_path), MISSING_IN_DOSAGES)
    _log_panel_match(match, Path(vcf_path), snp_key, max_missing)
    table = panel_covariance_table(match)
    with atomic_path(out) as tmp:
        write_covariance(tmp, table)
    log.info("wrote %s: %d rows for %d genes", out, table.height, table["GENE"].n_unique())
    return Path(out)
