"""Probabilistic fine-mapping of TWAS associations (`enpact finemap`), the model of FOCUS (Mancuso et al. 2019,
Nat Genet 51:675; pyfocus 0.802): which of several neighbouring significant genes explains a region's signal.

In a region, the TWAS z-scores of m genes are modelled as z ~ N(R_S c, R) for a set S of causal genes, where R is
the correlation of the genes' predicted expression across a reference panel and the causal effects c have prior
variance prior_chisq / |S|, with prior_chisq = z' R^+ z. Every causal configuration of up to `max_genes` genes is
enumerated; its Bayes factor against the null (FINEMAP's form, from the eigenvalues of R_S) times the prior
p^|S| (1-p)^(m-|S|) gives its posterior, and a gene's posterior inclusion probability (PIP) sums the posteriors of
the configurations that hold it. The null model (no causal gene) takes part: its posterior is reported, and the
credible set is the smallest set of genes (and possibly the null) ranked by PIP whose PIPs, normalised to their
sum with the null's, reach the credible level (FOCUS's rule).

Regions. FOCUS fine-maps LD blocks that hold a genome-wide significant GWAS SNP; here a region is built around the
significant TWAS genes (p below `pvalue_threshold`, Bonferroni over the tested genes by default): each opens a
window of +-`window_bp` around its position (the median varID position of its model SNPs, or a gene positions
table), overlapping windows merge, and every tested gene whose position lies in a merged window belongs to it.

The correlation of predicted expression between genes i and j is w_i' S w_j / sqrt(w_i' S w_i w_j' S w_j), S the
dosage covariance of the union of their model SNPs across the panel (the SNP covariance files hold only each
gene's own SNP pairs), plus FOCUS's ridge: S + ridge diag(S), which is FOCUS's `LD + ridge I` on standardised
genotypes with the weights rescaled to them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from enpact.errors import EnpactError
from enpact.io import atomic_path

log = logging.getLogger(__name__)

FINEMAP_COLUMNS = ["region", "gene", "gene_name", "chrom", "position", "zscore", "pvalue", "pip",
                   "in_credible_set", "credible_set_size", "null_pip", "null_in_credible_set", "n_genes"]
FINEMAP_SUFFIX = ".tsv"


# ---------------------------------------------------------------------------------------------------------
# the model (one region)


@dataclass(frozen=True)
class RegionFit:
    """Fine-mapping of one region: per gene its PIP and credible-set membership, and the null model's."""

    pips: np.ndarray             # (m,) posterior inclusion probability of each gene
    null_pip: float              # posterior probability that no gene of the region is causal
    in_credible_set: np.ndarray  # (m,) bool
    null_in_credible_set: bool
    prior_chisq: float
    prior_prob: float


def prior_chisq(zscores: np.ndarray, correlation: np.ndarray) -> float:
    """The prior variance of the causal effects (FOCUS's default): z' R^+ z, by least squares."""
    solution = np.linalg.lstsq(correlation, zscores, rcond=None)[0]
    return float(zscores @ solution)


def causal_configurations(n_genes: int, max_genes: int) -> list[np.ndarray]:
    """Every set of 1..max_genes of n genes, as one (n_sets, k) index array per size k."""
    return [np.array(list(combinations(range(n_genes), k)), dtype=np.int64).reshape(-1, k)
            for k in range(1, min(max_genes, n_genes) + 1)]


def log_bayes_factors(zscores: np.ndarray, correlation: np.ndarray, sets: np.ndarray, chisq: float) -> np.ndarray:
    """log Bayes factor of each causal set (rows of `sets`, all of one size k) against the null, from the singular
    values and vectors of the sets' correlation blocks (all sets of the batch at once)."""
    k = sets.shape[1]
    scaled = chisq / k
    blocks = correlation[sets[:, :, None], sets[:, None, :]]
    vectors, values, _ = np.linalg.svd(blocks)
    projected = np.einsum("nk,nkj->nj", zscores[sets], vectors) ** 2
    shrink = 1.0 + scaled * values
    return -0.5 * np.log(shrink).sum(axis=1) + 0.5 * (scaled / shrink * projected).sum(axis=1)


def credible_set(pips: np.ndarray, null_pip: float, level: float) -> tuple[np.ndarray, bool]:
    """FOCUS's credible set: genes and the null ranked by PIP, taken until their share of the PIPs' sum reaches
    `level`."""
    values = np.append(pips, null_pip)
    order = np.argsort(-values, kind="stable")
    cumulative = np.cumsum(values[order] / values.sum())
    taken = min(int(np.searchsorted(cumulative, level, side="left")) + 1, len(values))
    chosen = np.zeros(len(values), dtype=bool)
    chosen[order[:taken]] = True
    return chosen[:-1], bool(chosen[-1])


def fine_map_region(zscores: np.ndarray, correlation: np.ndarray, max_genes: int = 3, prior_prob: float = 1e-3,
                    credible_level: float = 0.9) -> RegionFit:
    """PIPs and credible set of one region's genes from their TWAS z-scores and predicted-expression correlation."""
    zscores = np.asarray(zscores, dtype=np.float64)
    correlation = np.asarray(correlation, dtype=np.float64)
    m = len(zscores)
    if correlation.shape != (m, m):
        raise ValueError(f"correlation must be {m} x {m}, not {correlation.shape}")
    if not 0.0 < prior_prob < 1.0:
        raise EnpactError(f"the prior probability of a causal gene must lie between 0 and 1, not {prior_prob}")
    chisq = prior_chisq(zscores, correlation)
    null = m * np.log1p(-prior_prob)
    batches = []
    for sets in causal_configurations(m, max_genes):
        k = sets.shape[1]
        prior = k * np.log(prior_prob) + (m - k) * np.log1p(-prior_prob)
        batches.append((sets, log_bayes_factors(zscores, correlation, sets, chisq) + prior))
    marginal = np.logaddexp.reduce(np.concatenate([[null], *[local for _, local in batches]]))
    pips = np.zeros(m)
    for sets, local in batches:
        pips += np.bincount(sets.ravel(), weights=np.repeat(np.exp(local - marginal), sets.shape[1]), minlength=m)
    null_pip = float(np.exp(null - marginal))
    in_set, null_in_set = credible_set(pips, null_pip, credible_level)
    return RegionFit(pips=pips, null_pip=null_pip, in_credible_set=in_set, null_in_credible_set=null_in_set,
                     prior_chisq=chisq, prior_prob=prior_prob)


# ---------------------------------------------------------------------------------------------------------
# regions and the correlation of predicted expression


def twas_regions(genes: pd.DataFrame, pvalue_threshold: float, window_bp: int) -> pd.DataFrame:
    """Regions around significant genes: `genes` (gene, chrom, position, pvalue) with a `region` column added
    ('chrom:start-end', None outside every region) and the rows sorted by chromosome and position."""
    from enpact.genome import natural_chromosome_key

    if window_bp < 0:
        raise EnpactError(f"the fine-mapping window must be 0 bp or more, not {window_bp}")
    chroms = sorted(genes["chrom"].astype(str).unique(), key=natural_chromosome_key)
    rank = {c: i for i, c in enumerate(chroms)}
    table = genes.assign(chrom=genes["chrom"].astype(str))
    table = table.iloc[np.lexsort((table["gene"].astype(str).to_numpy(), table["position"].to_numpy(np.float64),
                                   table["chrom"].map(rank).to_numpy()))].reset_index(drop=True)
    region = np.full(len(table), None, dtype=object)
    position = table["position"].to_numpy(np.float64)
    significant = (table["pvalue"].to_numpy(np.float64) < pvalue_threshold) & np.isfinite(position)
    for chrom in chroms:
        on_chrom = (table["chrom"] == chrom).to_numpy()
        hits = np.sort(position[on_chrom & significant])
        if not len(hits):
            continue
        breaks = np.flatnonzero(np.diff(hits) > 2 * window_bp) + 1
        for cluster in np.split(hits, breaks):
            start, end = max(int(cluster[0]) - window_bp, 0), int(cluster[-1]) + window_bp
            inside = on_chrom & (position >= start) & (position <= end)
            region[inside] = f"{chrom}:{start}-{end}"
    return table.assign(region=region)


def predicted_expression_correlation(dosages: np.ndarray, weights: np.ndarray, ridge: float = 0.1) -> np.ndarray:
    """Correlation of predicted expression between genes: w_i' S w_j / sqrt(w_i' S w_i w_j' S w_j), with S + ridge
    diag(S) for S the dosage covariance of the SNPs (rows of `dosages`, samples in columns; `weights` SNPs x genes)."""
    x = np.asarray(dosages, dtype=np.float64)
    n = x.shape[1]
    if n < 2:
        raise EnpactError(f"the reference panel has {n} individual; a correlation needs at least 2")
    centred = x - x.mean(axis=1, keepdims=True)
    predicted = centred.T @ weights                      # samples x genes
    covariance = predicted.T @ predicted / (n - 1)
    snp_variance = (centred ** 2).sum(axis=1) / (n - 1)
    covariance += ridge * (weights.T * snp_variance) @ weights
    scale = 1.0 / np.sqrt(np.diag(covariance))
    return covariance * scale[:, None] * scale[None, :]


@dataclass(frozen=True)
class PanelWeights:
    """The model SNPs of a set of genes placed on a reference panel: dosage rows and one weight column per gene."""

    genes: list[str]
    dosages: np.ndarray   # (n_rows, n_samples): copies of each SNP's effect allele
    weights: np.ndarray   # (n_rows, n_genes)
    snps_absent: int      # model SNPs of these genes not in the panel


def panel_weights(db_path: Path, vcf_path: Path, genes: Sequence[str], snp_key: str,
                  samples: Sequence[str] | None, max_missing: float = 0.1) -> PanelWeights:
    """Find the genes' weighted SNPs in the panel (enpact.panel_covariance's matching: position, alleles, effect
    allele dosage) and lay their weights out against the panel's dosage rows."""
    from enpact.panel_covariance import match_panel, model_snps
    from enpact.predictdb import load_model_database
    from enpact.variants import VcfReader

    snps = model_snps(db_path, snp_key)
    snps = snps[snps["gene"].isin(set(genes))].reset_index(drop=True)
    model = load_model_database(db_path, snp_key)
    weight_of = pd.DataFrame({"gene": model.extra["gene"].to_numpy(dtype=object)[model.entry_gene],
                              "key": model.entry_key, "weight": model.entry_weight})
    snps = snps.merge(weight_of, on=["gene", "key"], how="left")
    vcf = VcfReader(vcf_path, list(samples) if samples else None, allow_unphased=True)
    try:
        match = match_panel(snps, vcf, snp_key, max_missing)
    finally:
        vcf.close()
    entries = match.entries
    found = entries[(entries["row"] >= 0) & entries["weight"].notna()]
    rows, row_index = np.unique(found["row"].to_numpy(), return_inverse=True)
    column = pd.Index(list(genes)).get_indexer(found["gene"])
    weights = np.zeros((len(rows), len(genes)))
    np.add.at(weights, (row_index, column), found["weight"].to_numpy(np.float64))
    return PanelWeights(genes=list(genes), dosages=match.dosages[rows], weights=weights,
                        snps_absent=int((entries["row"] < 0).sum()))


# ---------------------------------------------------------------------------------------------------------
# driver


@dataclass(frozen=True)
class FinemapSettings:
    """How regions are made and fine-mapped (FOCUS's defaults where it has one)."""

    pvalue_threshold: float | None = None   # None: Bonferroni 0.05 / genes tested
    window_bp: int = 1_000_000
    max_genes: int = 3
    prior_prob: float | None = None         # None: 1 / genes in the region (FOCUS 0.802's default, per region)
    credible_level: float = 0.9
    ridge: float = 0.1
    max_missing: float = 0.1                # model SNPs with more missing calls in the panel are left out


def read_twas_table(path: Path) -> pd.DataFrame:
    """An S-PrediXcan results CSV: gene, gene_name, zscore, pvalue of the genes with a z-score."""
    if not path.is_file():
        raise EnpactError(f"{path}: TWAS results not found")
    try:
        table = pd.read_csv(path, na_values=["NA"], dtype={"gene": str, "gene_name": str})
    except (ValueError, UnicodeDecodeError) as err:
        raise EnpactError(f"{path}: cannot read the TWAS results ({err})") from None
    missing = [c for c in ("gene", "zscore", "pvalue") if c not in table.columns]
    if missing:
        raise EnpactError(f"{path}: column '{missing[0]}' missing; give the CSV `enpact twas` writes")
    if "gene_name" not in table:
        table["gene_name"] = None
    table = table[table["zscore"].notna() & table["pvalue"].notna()]
    return table.loc[:, ["gene", "gene_name", "zscore", "pvalue"]].reset_index(drop=True)


def fine_map_twas(twas: pd.DataFrame, positions: pd.DataFrame, db_path: Path, vcf_path: Path, snp_key: str,
                  samples: Sequence[str] | None, settings: FinemapSettings) -> pd.DataFrame:
    """The fine-mapping table (FINEMAP_COLUMNS) of one TWAS result: its regions, each gene's PIP and credible set."""
    genes = twas.merge(positions.rename(columns={"pos": "position"}), on="gene", how="left")
    threshold = (settings.pvalue_threshold if settings.pvalue_threshold is not None
                 else 0.05 / max(len(genes), 1))
    placed = genes[genes["chrom"].notna() & genes["position"].notna()]
    if len(placed) < len(genes):
        log.warning("%d tested genes have no position (no varID position in the database, or not in the gene "
                    "positions table) and are left out of fine-mapping", len(genes) - len(placed))
    table = twas_regions(placed, threshold, settings.window_bp)
    table = table[table["region"].notna()].reset_index(drop=True)
    if table.empty:
        log.info("fine-mapping: no gene with p < %.3g; no region to fine-map", threshold)
        return pd.DataFrame(columns=FINEMAP_COLUMNS)
    panel = panel_weights(db_path, vcf_path, table["gene"].tolist(), snp_key, samples, settings.max_missing)
    if panel.snps_absent:
        log.warning("fine-mapping: %d model SNPs of the regions' genes are not in the panel %s and are left out of "
                    "the expression correlation", panel.snps_absent, vcf_path)
    dosages = panel.dosages.astype(np.float64)
    variance = (((dosages - dosages.mean(axis=1, keepdims=True)).T @ panel.weights) ** 2).sum(axis=0)
    silent = variance <= 0
    if silent.any():
        log.warning("fine-mapping: %d genes have no predicted-expression variance in the panel (no model SNP found, "
                    "or monomorphic) and are left out, e.g. %s", int(silent.sum()), table["gene"][silent].iloc[0])
    column_of = {g: i for i, g in enumerate(panel.genes)}
    parts = []
    for region, members in table[~silent].groupby("region", sort=False):
        columns = [column_of[g] for g in members["gene"]]
        correlation = predicted_expression_correlation(panel.dosages, panel.weights[:, columns], settings.ridge)
        prior = settings.prior_prob if settings.prior_prob is not None else 1.0 / max(len(members), 2)
        fit = fine_map_region(members["zscore"].to_numpy(np.float64), correlation, settings.max_genes, prior,
                              settings.credible_level)
        parts.append(members.assign(pip=fit.pips, in_credible_set=fit.in_credible_set,
                                    credible_set_size=int(fit.in_credible_set.sum()), null_pip=fit.null_pip,
                                    null_in_credible_set=fit.null_in_credible_set, n_genes=len(members))
                     .sort_values("pip", ascending=False, kind="stable"))
        top = parts[-1].iloc[0]
        log.info("fine-mapping %s: %d genes, top %s (PIP %.3f), credible set of %d genes%s", region, len(members),
                 top["gene"], top["pip"], int(fit.in_credible_set.sum()),
                 " and the null" if fit.null_in_credible_set else "")
    result = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FINEMAP_COLUMNS)
    result["position"] = result["position"].astype("int64")
    return result.loc[:, FINEMAP_COLUMNS]


def write_finemap(table: pd.DataFrame, path: Path) -> None:
    """The fine-mapping table, tab-separated, NA for missing values (atomic)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.6g")


def output_path(twas_csv: Path, out: str, several: bool) -> Path:
    """Where a TWAS result's fine-mapping goes: `{gwas}` in `out` replaced by the result's GWAS name, or, for
    several results (or an existing folder) without `{gwas}`, out/<gwas>.tsv."""
    name = twas_csv.name[: -len(".csv")] if twas_csv.name.endswith(".csv") else twas_csv.stem
    if "{gwas}" in out:
        return Path(out.replace("{gwas}", name))
    if several or Path(out).is_dir():
        return Path(out) / f"{name}{FINEMAP_SUFFIX}"
    return Path(out)


def run_finemap(twas_csvs: Sequence[Path], db_path: Path, vcf_path: Path, out: str, snp_key: str,
                samples: Sequence[str] | None, settings: FinemapSettings,
                gene_positions_path: Path | None = None) -> list[Path]:
    """Fine-map each TWAS result against the database's models and the panel; write one table per result."""
    from enpact.predictdb import gene_positions_from_model
    from enpact.twas import read_gene_positions

    if settings.max_genes < 1:
        raise EnpactError(f"--max-genes must be at least 1, not {settings.max_genes}")
    if not 0.0 < settings.credible_level <= 1.0:
        raise EnpactError(f"--credible-level must lie in (0, 1], not {settings.credible_level}")
    if settings.ridge < 0:
        raise EnpactError(f"--ridge must be 0 or more, not {settings.ridge}")
    positions = (read_gene_positions(gene_positions_path) if gene_positions_path
                 else gene_positions_from_model(db_path, snp_key))
    written = []
    for csv in twas_csvs:
        path = output_path(Path(csv), out, len(twas_csvs) > 1)
        write_finemap(fine_map_twas(read_twas_table(Path(csv)), positions, db_path, vcf_path, snp_key, samples,
                                    settings), path)
        written.append(path)
    return written
