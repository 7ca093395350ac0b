"""The run report tells the truth: sign-aware personalized accuracy, what the valid split was used for, empty
sections explained with numbers, what ran and how long (cached steps included), TWAS positions and FDR, and
plots that share one size and style with Manhattan labels that do not overlap. Inputs are built by hand."""

from __future__ import annotations

import gzip
import html
import json
import platform
import re
import shutil
import struct
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from enpact import __version__
from enpact.predictdb import EXTRA_SCHEMA, write_predictdb
from enpact.accuracy import one_sided_empirical_p, personalized_accuracy
from enpact.findings import benjamini_hochberg
from enpact.report import git_commit, write_report
from enpact.steps import AccuracyConfig, accuracy
from enpact.store import PersonalizedStore, write_personalized_store

SAMPLES = [f"IND{i:03d}" for i in range(1, 61)]


# ---------------------------------------------------------------------------------------------------------
# helpers


def _params(tmp_path: Path, **changes) -> dict:
    """Parameters of a run whose outputs are under tmp_path/results."""
    params = {"name": "study", "outdir": str(tmp_path / "results"), "device": "cpu", "snp_key": "varID",
              "seed": 0, "db_pval_threshold": 0.05, "db_rho_threshold": 0.1, "gwas_snp_column": "variant_id",
              "gwas_effect_allele_column": "effect_allele", "gwas_non_effect_allele_column": "non_effect_allele",
              "gwas_zscore_column": "zscore", "gwas_keep_non_rsid": True, "weights": "some/enformer",
              "delete_personalized": False}
    params.update(changes)
    return params


def _page(outdir: Path) -> str:
    """index.html with tags removed and whitespace collapsed (to search for sentences)."""
    text = (outdir / "report" / "index.html").read_text()
    text = re.sub(r"<img[^>]*>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def _summary(outdir: Path) -> dict:
    return json.loads((outdir / "report" / "summary.json").read_text())


def _write_db(path: Path, weights: list[tuple]) -> Path:
    """A PredictDB file (enpact.predictdb.write_predictdb) from (gene, rsid, varID, ref, eff, weight) rows."""
    table = pd.DataFrame(weights, columns=["gene", "rsid", "varID", "ref_allele", "eff_allele", "weight"])
    genes = list(pd.unique(table["gene"]))
    extra = pd.DataFrame({name: [np.nan] * len(genes) for name, _, _ in EXTRA_SCHEMA})
    extra["gene"] = genes
    extra["genename"] = [f"NAME_{g}" for g in genes]
    extra["n.snps.in.model"] = [int((table["gene"] == g).sum()) for g in genes]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_predictdb(path, extra, table, n_samples=60, population=None, chromosomes=["chr1"], cv_seed=0)
    return path


def _write_gwas(path: Path, rows: list[tuple[str, str, str, float]]) -> Path:
    """A tab-separated GWAS (variant_id, effect_allele, non_effect_allele, zscore)."""
    lines = ["variant_id\teffect_allele\tnon_effect_allele\tzscore"] + ["\t".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_twas(path: Path, rows: list[tuple[str, float]]) -> Path:
    """A TWAS result table with the S-PrediXcan columns, sorted by p-value."""
    columns = ["gene", "gene_name", "zscore", "effect_size", "pvalue", "var_g", "pred_perf_r2", "pred_perf_pval",
               "pred_perf_qval", "n_snps_used", "n_snps_in_cov", "n_snps_in_model"]
    table = pd.DataFrame([{"gene": g, "gene_name": f"NAME_{g}", "zscore": 1.0, "effect_size": np.nan, "pvalue": p,
                           "var_g": 0.1, "pred_perf_r2": 0.5, "pred_perf_pval": 0.01, "pred_perf_qval": np.nan,
                           "n_snps_used": 2, "n_snps_in_cov": 2, "n_snps_in_model": 2} for g, p in rows],
                         columns=columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.sort_values("pvalue").to_csv(path, index=False, na_rep="NA")
    return path


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


# ---------------------------------------------------------------------------------------------------------
# 1. personalized accuracy: one-sided for a positive correlation; strongly negative genes reported apart


def test_one_sided_empirical_p_by_hand():
    null = np.array([[0.1, 0.6, 0.5, -0.2], [0.1, 0.6, 0.5, -0.2], [0.0, 0.0, 0.0, 0.0]])
    p = one_sided_empirical_p(np.array([0.5, -0.5, np.nan]), null)
    assert p[0] == pytest.approx((1 + 2) / 5)  # 0.6 and 0.5 are >= 0.5
    assert p[1] == pytest.approx((1 + 4) / 5)  # a negative r is never evidence for a positive correlation
    assert np.isnan(p[2])


def _signed_genes(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three genes predicted with the right sign, three with the wrong sign, two with r = 0 exactly."""
    predicted, observed = {}, {}
    for i in range(8):
        x = rng.normal(size=len(SAMPLES))
        noise = rng.normal(size=len(SAMPLES))
        if i < 3:
            y = x + 0.3 * noise
        elif i < 6:
            y = -x + 0.3 * noise
        else:
            xc = x - x.mean()
            y = noise - noise.mean() - xc * (xc @ (noise - noise.mean())) / (xc @ xc)  # orthogonal to x
        predicted[f"G{i}"], observed[f"G{i}"] = x, y
    index = pd.Index(SAMPLES)
    return pd.DataFrame(predicted, index=index).T, pd.DataFrame(observed, index=index).T


def test_personalized_accuracy_is_one_sided_for_positive_correlation():
    predicted, observed = _signed_genes(np.random.default_rng(1))
    accuracy = personalized_accuracy(predicted, observed, seed=0, n_permutations=199).set_index("gene")
    assert (accuracy.loc[["G0", "G1", "G2"], "r"] > 0.9).all()
    np.testing.assert_allclose(accuracy.loc[["G0", "G1", "G2"], "p_positive"], 1 / 200)
    # strongly wrong-sign genes are not significant for the one-sided test, but are flagged by p_negative
    assert (accuracy.loc[["G3", "G4", "G5"], "r"] < -0.9).all()
    assert (accuracy.loc[["G3", "G4", "G5"], "p_positive"] == 1.0).all()
    np.testing.assert_allclose(accuracy.loc[["G3", "G4", "G5"], "p_negative"], 1 / 200)
    np.testing.assert_allclose(accuracy.loc[["G6", "G7"], "r"], 0.0, atol=1e-12)
    assert (accuracy.loc[["G6", "G7"], "p_positive"] > 0.2).all()
    np.testing.assert_allclose(accuracy["r"], [np.corrcoef(predicted.loc[g], observed.loc[g])[0, 1]
                                               for g in accuracy.index], atol=1e-12)


def _write_personalized(outdir: Path, predicted: pd.DataFrame, expression: Path) -> None:
    """One merged personalized store holding `predicted` as the mean of two equal haplotypes, and the accuracy
    step's tables for it against the matrix `expression` (what both engines run before the report)."""
    values = predicted.to_numpy(np.float32)
    store = PersonalizedStore(locus_ids=list(predicted.index), samples=list(predicted.columns),
                              prediction=np.repeat(values[:, :, None], 2, axis=2), reference=values.mean(axis=1),
                              meta={}, n_unique_windows=np.full(len(predicted), 7, dtype=np.int32))
    (outdir / "personalized").mkdir(parents=True, exist_ok=True)
    write_personalized_store(outdir / "personalized" / "chunk.h5", store)
    accuracy(AccuracyConfig(personalized=(outdir / "personalized" / "chunk.h5",), expression=expression,
                            outdir=outdir / "accuracy"))


def _write_expression(path: Path, observed: pd.DataFrame) -> Path:
    observed.rename_axis("NAME").reset_index().to_csv(path, sep="\t", index=False)
    return path


def test_report_counts_significantly_positive_and_strongly_negative_genes_apart(tmp_path):
    predicted, observed = _signed_genes(np.random.default_rng(1))
    outdir = tmp_path / "results"
    _write_personalized(outdir, predicted, _write_expression(tmp_path / "expression.tsv", observed))
    write_report(outdir, _params(tmp_path))
    accuracy = _summary(outdir)["personalized"]["accuracy"]
    assert accuracy["genes"] == 8
    assert accuracy["significantly_positive"] == 3
    assert accuracy["strongly_negative"] == 3
    page = _page(outdir)
    assert "3 genes correlate significantly positively (one-sided permutation p < 0.05 for r > 0" in page
    assert "3 genes are strongly negative" in page and "wrong-sign prediction, not a success" in page
    table = pd.read_csv(outdir / "accuracy" / "personalized_accuracy.tsv", sep="\t")
    assert {"p_positive", "p_negative"} <= set(table.columns)


def test_accuracy_without_enough_shared_individuals_says_how_many(tmp_path):
    predicted, observed = _signed_genes(np.random.default_rng(1))
    observed = observed.iloc[:, :3].rename(columns=lambda s: s)  # three shared individuals
    outdir = tmp_path / "results"
    _write_personalized(outdir, predicted, _write_expression(tmp_path / "e.tsv", observed))
    write_report(outdir, _params(tmp_path))
    assert "shares 3 of the 60 VCF individuals and 8 of the 8 loci; at least 5 shared individuals" in _page(outdir)


def test_constant_predictions_explain_undefined_r(tmp_path):
    predicted, observed = _signed_genes(np.random.default_rng(1))
    predicted.loc[:, :] = 1.0  # no variant changes any prediction
    outdir = tmp_path / "results"
    _write_personalized(outdir, predicted, _write_expression(tmp_path / "e.tsv", observed))
    write_report(outdir, _params(tmp_path))
    page = _page(outdir)
    assert "no correlation can be computed" in page
    assert "r is undefined for 8 genes: 8 have the same personalized prediction for every individual" in page
    assert _summary(outdir)["personalized"]["accuracy"]["constant_predictions"] == 8


def test_a_missing_accuracy_step_is_explained(tmp_path):
    outdir = tmp_path / "results"
    write_report(outdir, _params(tmp_path))
    assert "accuracy/personalized.json is not in" in _page(outdir)
    assert "the accuracy step (after personalize) did not run" in _page(outdir)


def test_the_report_renders_accuracy_without_the_stores_or_the_matrix(tmp_path, monkeypatch):
    """The analysis is the accuracy step's: with the stores deleted (delete_personalized) and the training matrix
    out of reach, the report still shows the accuracy the step computed, and runs no permutation itself."""
    predicted, observed = _signed_genes(np.random.default_rng(1))
    outdir = tmp_path / "results"
    _write_personalized(outdir, predicted, _write_expression(tmp_path / "e.tsv", observed))
    (outdir / "personalized" / "chunk.h5").unlink()
    (tmp_path / "e.tsv").unlink()
    calls = []
    monkeypatch.setattr("enpact.accuracy.personalized_accuracy", lambda *a, **k: calls.append(1))
    write_report(outdir, _params(tmp_path, delete_personalized=True, expression=str(tmp_path / "e.tsv")))
    assert not calls
    assert _summary(outdir)["personalized"]["accuracy"]["significantly_positive"] == 3


# ---------------------------------------------------------------------------------------------------------
# 2. what the valid split was used for


def _write_model(outdir: Path, model_type: str, training: dict) -> None:
    split = {"pearson_r": 0.8, "spearman_rho": 0.7, "r2": 0.6, "n": 40}
    metrics = {"model_type": model_type, "model": {"train": split, "valid": split, "test": split},
               "baseline": {"track": "CAGE:x", "metrics": {"train": split, "valid": split, "test": split}}}
    (outdir / "model").mkdir(parents=True, exist_ok=True)
    (outdir / "model" / "metrics.json").write_text(json.dumps(metrics))
    (outdir / "model" / "model.json").write_text(json.dumps({"model_type": model_type, "training": training}))


def test_cnn_report_says_the_valid_split_chose_early_stopping(tmp_path):
    outdir = tmp_path / "results"
    _write_model(outdir, "cnn", {"early_stopping_on": "valid split", "best_epoch": 12, "epochs_run": 22})
    write_report(outdir, _params(tmp_path, train_chroms="chr1,chr2", valid_chroms="chr5", test_chroms="chr6"))
    page = _page(outdir)
    assert "never seen in training" not in page
    assert "The valid chromosomes (chr5) chose when training stopped (early stopping" in page
    assert "best epoch 12 of 22 run" in page
    assert "Only the test chromosomes (chr6) were never used in fitting" in page
    assert _summary(outdir)["training_use_of_splits"] == {"model_type": "cnn", "train": "fitted",
                                                          "valid": "early stopping", "test": "not used"}


def test_elastic_net_report_says_valid_was_not_used(tmp_path):
    outdir = tmp_path / "results"
    _write_model(outdir, "elastic_net", {"folds": 5})
    (outdir / "loci").mkdir()
    pd.DataFrame({"locus_id": ["a", "b", "c"], "chrom": ["chr1", "chr5", "chr6"],
                  "split": ["train", "valid", "test"]}).to_csv(outdir / "loci" / "loci.tsv", sep="\t", index=False)
    write_report(outdir, _params(tmp_path))
    page = _page(outdir)
    assert "penalty was chosen by 5-fold cross-validation within them" in page
    assert "The valid chromosomes (chr5) and the test chromosomes (chr6) were not used in fitting" in page
    assert _summary(outdir)["training_use_of_splits"]["valid"] == "not used"


# ---------------------------------------------------------------------------------------------------------
# 3. empty or degenerate sections explain why, with numbers


WEIGHTS = [("G1", "rs1", "chr1_100_A_G_b38", "A", "G", 0.5), ("G1", "rs2", "chr1_200_C_T_b38", "C", "T", 0.2),
           ("G2", "rs3", "chr2_150_G_T_b38", "G", "T", -0.3), ("G2", "rs4", "chr2_350_A_C_b38", "A", "C", 0.1),
           ("G2", "rs1", "chr1_100_A_G_b38", "A", "G", 0.4)]  # chr1_100 in two genes: one model SNP


def test_no_snp_overlap_is_explained_with_counts(tmp_path):
    outdir = tmp_path / "results"
    _write_db(outdir / "linearized" / "study.db", WEIGHTS)
    gwas = _write_gwas(tmp_path / "height.tsv", [("rs1", "G", "A", 1.0), ("rs3", "T", "G", 2.0)])  # rsids
    _write_twas(outdir / "twas" / "height.csv", [])
    write_report(outdir, _params(tmp_path, gwas=str(gwas)))
    page = _page(outdir)
    assert "0 of 4 model SNPs found in the GWAS" in page
    assert "chr1_100_A_G_b38" in page and "rs1" in page  # what the ids look like on each side
    assert "0 genes tested" in page
    twas = _summary(outdir)["twas"]["height"]
    assert (twas["model_snps"], twas["found_in_gwas"], twas["genes"]) == (4, 0, 0)


def test_overlap_counts_flipped_and_mismatched_alleles(tmp_path):
    outdir = tmp_path / "results"
    _write_db(outdir / "linearized" / "study.db", WEIGHTS)
    gwas = _write_gwas(tmp_path / "height.tsv", [
        ("chr1_100_A_G_b38", "G", "A", 1.0),   # model eff G, ref A: same orientation
        ("chr1_200_C_T_b38", "C", "T", 2.0),   # effect allele = model ref: flipped
        ("chr2_150_G_T_b38", "a", "c", 0.5),   # neither way round: mismatch
        ("chr9_1_A_T_b38", "T", "A", 3.0),     # not a model SNP
    ])
    _write_twas(outdir / "twas" / "height.csv", [("G1", 0.01), ("G2", 0.2)])
    write_report(outdir, _params(tmp_path, gwas=str(gwas)))
    twas = _summary(outdir)["twas"]["height"]
    assert (twas["genes_in_database"], twas["model_snps"], twas["found_in_gwas"]) == (2, 4, 3)
    assert (twas["allele_matched"], twas["flipped"], twas["allele_mismatch"], twas["genes"]) == (2, 1, 1, 2)
    page = _page(outdir)
    assert "3 of 4 model SNPs found in the GWAS; 2 match the model's alleles, 1 of them flipped" in page
    assert "height 2 4 3 2 2 1 1 2" in page  # the overview row: GWAS, genes, model SNPs, found, matched, usable z ...
    assert "all 2 have a usable z-score" in page


def test_matched_snps_without_a_usable_z_are_counted(tmp_path):
    outdir = tmp_path / "results"
    _write_db(outdir / "linearized" / "study.db", WEIGHTS)
    gwas = _write_gwas(tmp_path / "height.tsv", [
        ("chr1_100_A_G_b38", "G", "A", "NA"), ("chr1_200_C_T_b38", "T", "C", 2.0),
        ("chr2_150_G_T_b38", "T", "G", "nan"), ("chr2_350_A_C_b38", "C", "A", 1.5)])
    _write_twas(outdir / "twas" / "height.csv", [("G1", 0.01), ("G2", 0.2)])
    write_report(outdir, _params(tmp_path, gwas=str(gwas)))
    twas = _summary(outdir)["twas"]["height"]
    assert (twas["allele_matched"], twas["usable_z"]) == (4, 2)
    assert "2 of the matched have no usable z-score (missing or not a number)" in _page(outdir)


def test_non_rsid_ids_dropped_by_twas_are_explained(tmp_path):
    outdir = tmp_path / "results"
    _write_db(outdir / "linearized" / "study.db", WEIGHTS)
    gwas = _write_gwas(tmp_path / "height.tsv", [("chr1_100_A_G_b38", "G", "A", 1.0)])
    _write_twas(outdir / "twas" / "height.csv", [])
    write_report(outdir, _params(tmp_path, gwas=str(gwas), gwas_keep_non_rsid=False))
    assert "S-PrediXcan reads only rsids unless gwas_keep_non_rsid: true" in _page(outdir)


def test_empty_database_and_filters_are_explained(tmp_path):
    outdir = tmp_path / "results"
    _write_db(outdir / "linearized" / "study.db", [])
    summary = pd.DataFrame({"gene": ["G1", "G2", "G3"], "status": ["ok", "ok", "skipped"],
                            "reason": ["", "", "no SNPs in window"], "cv_R2_avg": [0.1, 0.2, np.nan],
                            "rho_avg": [0.05, 0.3, np.nan], "zscore_pval": [0.5, 0.2, np.nan],
                            "n_snps_in_model": [2, 0, 0], "kept": [False, False, False]})
    summary.to_csv(outdir / "linearized" / "study.summary.tsv", sep="\t", index=False)
    gwas = _write_gwas(tmp_path / "height.tsv", [("chr1_100_A_G_b38", "G", "A", 1.0)])
    _write_twas(outdir / "twas" / "height.csv", [])
    write_report(outdir, _params(tmp_path, gwas=str(gwas)))
    page = _page(outdir)
    assert "0 genes kept" in page and "skipped: no SNPs in window: 1" in page
    assert ("None passed all three: of 2 fitted loci, 0 have zscore_pval < 0.05, 1 have rho_avg > 0.1 and 1 keep "
            "at least one SNP, so the database is empty") in page
    assert "0 genes tested : the model database has no genes" in page


def test_undefined_cross_validated_r2_is_explained_not_shown_as_nan(tmp_path):
    outdir = tmp_path / "results"
    (outdir / "linearized").mkdir(parents=True)
    pd.DataFrame({"gene": ["G1", "G2"], "status": ["ok", "ok"], "reason": ["", ""], "cv_R2_avg": [np.nan, np.nan],
                  "rho_avg": [0.5, 0.6], "zscore_pval": [0.01, 0.01], "n_snps_in_model": [2, 3],
                  "kept": [True, True]}).to_csv(outdir / "linearized" / "study.summary.tsv", sep="\t", index=False)
    write_report(outdir, _params(tmp_path))
    page = _page(outdir)
    assert "no cross-validated R2 (undefined for all 2 fitted loci" in page and " nan" not in page.lower()
    assert _summary(outdir)["linearization"]["median_cv_R2"] is None


def test_nested_cross_validation_filters_are_named_as_applied(tmp_path):
    outdir = tmp_path / "results"
    (outdir / "linearized").mkdir(parents=True)
    pd.DataFrame({"gene": ["G1", "G2"], "status": ["ok", "ok"], "reason": ["", ""], "cv_R2_avg": [0.5, 0.6],
                  "rho_avg": [0.7, 0.8], "zscore_pval": [0.01, 0.01], "nested_cv_rho_avg": [0.6, 0.05],
                  "nested_cv_zscore_pval": [0.01, 0.4], "n_snps_in_model": [2, 3], "kept": [True, False]}
                 ).to_csv(outdir / "linearized" / "study.summary.tsv", sep="\t", index=False)
    write_report(outdir, _params(tmp_path, lin_nested_cv=True))
    page = _page(outdir)
    assert "1 gene kept by the filters (nested_cv_zscore_pval < 0.05, nested_cv_rho_avg > 0.1, at least one SNP)" in page
    assert _summary(outdir)["linearization"]["filters"]["all"] == 1


def test_missing_genotype_calls_are_counted_from_the_linearization_summary(tmp_path):
    outdir = tmp_path / "results"
    (outdir / "linearized").mkdir(parents=True)
    pd.DataFrame({"gene": ["G1", "G2"], "status": ["ok", "skipped"], "reason": ["", "too_few_snps"],
                  "cv_R2_avg": [0.5, np.nan], "rho_avg": [0.7, np.nan], "zscore_pval": [0.01, np.nan],
                  "n_snps_in_model": [2, 0], "kept": [True, False], "n_samples": [80, 80],
                  "n_snps_passing_filters": [10, 1], "n_missing_calls": [30, 2], "n_snps_too_missing": [1, 2]}
                 ).to_csv(outdir / "linearized" / "study.summary.tsv", sep="\t", index=False)
    write_report(outdir, _params(tmp_path, lin_max_missing=0.05))
    page = _page(outdir)
    assert "Missing genotype calls: 32 of the 880 genotypes given to the linear models (3.64%)" in page
    assert "3 variant sites were left out for more than 0.05 of their calls missing (lin_max_missing)" in page
    assert _summary(outdir)["linearization"]["missing_calls"] == {
        "imputed_calls": 32, "genotypes": 880, "imputed_fraction": 32 / 880, "sites_left_out": 3, "max_missing": 0.05}


def test_missing_twas_table_and_no_gwas_are_explained(tmp_path):
    outdir = tmp_path / "results"
    gwas = _write_gwas(tmp_path / "height.tsv", [("rs1", "G", "A", 1.0)])
    write_report(outdir, _params(tmp_path, gwas=str(gwas)))
    assert "No result table twas/height.csv : the TWAS step did not run for this GWAS (no model database)" in \
        _page(outdir)
    write_report(outdir, _params(tmp_path))
    assert "No GWAS given (parameter gwas): no TWAS." in _page(outdir)


def test_unreadable_gwas_does_not_stop_the_report(tmp_path):
    """Nextflow's report task may not reach the GWAS file (e.g. in object storage): the rest still shows."""
    outdir = tmp_path / "results"
    _write_db(outdir / "linearized" / "study.db", WEIGHTS)
    _write_twas(outdir / "twas" / "height.csv", [("G1", 0.001), ("G2", 0.02)])
    write_report(outdir, _params(tmp_path, gwas=str(tmp_path / "elsewhere" / "height.tsv")))
    page = _page(outdir)
    assert "SNP overlap not computed here" in page and "2 genes tested" in page


# ---------------------------------------------------------------------------------------------------------
# 4. what ran, and timings with cached steps


def test_what_ran_table_and_summary(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["enpact", "run", "--params", "my params.yaml"])
    outdir = tmp_path / "results"
    write_report(outdir, _params(tmp_path, device="cuda"))
    run = _summary(outdir)["run"]
    assert run["command"] == "enpact run --params 'my params.yaml'"
    assert run["enpact_version"] == __version__
    assert run["host"] == platform.node()
    assert run["device"] == "cuda"
    try:
        import torch

        assert run["cuda_available"] == torch.cuda.is_available()
    except ImportError:
        assert run["cuda_available"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", run["made"])
    root = Path(__file__).resolve().parents[1]
    if (root / ".git").exists() and shutil.which("git"):
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        if head.returncode == 0:
            assert run["git_commit"].startswith(head.stdout.strip())
    page = _page(outdir)
    for fact in ("report made", "enpact run --params 'my params.yaml'", f"enpact version {__version__}",
                 "git commit", f"host {platform.node()}", "device (parameter) cuda", "CUDA available here"):
        assert fact in page


def test_git_commit_is_none_outside_a_checkout(tmp_path):
    assert git_commit(tmp_path) is None


def test_timings_show_cached_steps_with_the_seconds_of_the_run_that_computed_them(tmp_path):
    outdir = tmp_path / "results"
    (outdir / "pipeline_info").mkdir(parents=True)
    (outdir / "pipeline_info" / "timings.tsv").write_text(
        "group\tstep\tseconds\tstatus\n"
        "reference\treference/chunk1\t12.500\tcached\n"
        "reference\treference/chunk2\t3.300\tran\n"
        "personalize\tpersonalize/chunk1/s1\t0.000\tcached\n"
        "total\ttotal\t4.000\tran\n")
    write_report(outdir, _params(tmp_path))
    page = _page(outdir)
    assert "reference/chunk1 12.50 s (from an earlier run) cached" in page
    assert "reference/chunk2 3.30 s ran" in page
    assert "personalize/chunk1/s1 cached (time not recorded)" in page  # a timings file of an older runner
    assert ("2 steps were cached: their outputs came from an earlier run; 1 show the seconds of the run that "
            "computed them; 1 have no recorded time (0 in timings.tsv).") in page
    assert "reference 2 1 3.3 12.5" in page  # group: steps, cached, seconds this run, seconds from earlier runs
    summary = _summary(outdir)
    assert summary["timings"]["reference"] == pytest.approx(15.8)
    assert summary["timing_steps"][0] == {"group": "reference", "step": "reference/chunk1", "seconds": 12.5,
                                          "status": "cached"}


# ---------------------------------------------------------------------------------------------------------
# 5. TWAS table: chromosome, position and FDR q-value


def test_benjamini_hochberg_by_hand_and_against_scipy():
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan])
    # sorted 0.01, 0.03, 0.04, 0.2 -> p * 4 / rank = 0.04, 0.06, 0.0533, 0.2 -> running minimum from the top
    np.testing.assert_allclose(benjamini_hochberg(p), [0.04, 0.16 / 3, 0.16 / 3, 0.2, np.nan])
    assert np.isnan(benjamini_hochberg(np.array([np.nan]))).all()
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    p = np.concatenate([rng.uniform(size=500), rng.uniform(0, 1e-4, size=20), [1.0, 1.0, 0.0]])
    np.testing.assert_allclose(benjamini_hochberg(p), scipy_stats.false_discovery_control(p), rtol=1e-12)


def test_twas_table_shows_chromosome_position_and_qvalue(tmp_path):
    outdir = tmp_path / "results"
    _write_db(outdir / "linearized" / "study.db", WEIGHTS + [("G3", "rs9", "chr3_1000_A_G_b38", "A", "G", 1.0)])
    gwas = _write_gwas(tmp_path / "height.tsv", [("chr1_100_A_G_b38", "G", "A", 1.0)])
    _write_twas(outdir / "twas" / "height.csv", [("G1", 0.001), ("G2", 0.02), ("G3", 0.03)])
    write_report(outdir, _params(tmp_path, gwas=str(gwas)))
    text = _page(outdir)
    assert "chrom position (median of model SNPs)" in text and "FDR q-value" in text
    q = benjamini_hochberg(np.array([0.001, 0.02, 0.03]))
    assert f"G1 NAME_G1 chr1 150 1 0.001 {q[0]:.3g}" in text  # chr1 SNPs at 100 and 200
    assert f"G3 NAME_G3 chr3 1,000 1 0.03 {q[2]:.3g}" in text
    assert _summary(outdir)["twas"]["height"]["fdr_hits"] == int((q < 0.05).sum())


# ---------------------------------------------------------------------------------------------------------
# 6. plots: Manhattan labels do not overlap, chromosome names as given, one size and style for all


def _label_boxes(figure) -> list:
    """Window extents of the text of every label in the rendered figure (its leader line excluded)."""
    renderer = figure.canvas.get_renderer()
    axes = figure.axes[0]
    boxes = []
    for text in axes.texts:
        if hasattr(text, "update_positions"):
            text.update_positions(renderer)
        boxes.append((text.get_text(), Text.get_window_extent(text, renderer)))
    return boxes


def test_manhattan_labels_do_not_overlap_for_close_top_genes(tmp_path):
    from enpact.plots_twas import manhattan_plot

    rng = np.random.default_rng(0)
    n = 300
    chroms = np.array([f"chr{c}" for c in rng.integers(1, 7, n)], dtype=object)
    positions = rng.uniform(1, 3e5, n)
    p = rng.uniform(0.01, 1, n)
    chroms[:4] = "chr3"
    positions[:4] = [1.500e5, 1.501e5, 1.502e5, 1.503e5]  # four hits side by side, nearly equal p
    p[:4] = [1e-9, 1.1e-9, 1.2e-9, 1.3e-9]
    labels = [f"GENE{i:03d}_LONGNAME" for i in range(n)]
    figure = manhattan_plot(chroms, positions, p, tmp_path / "m.png", labels=labels)
    boxes = _label_boxes(figure)
    assert {name for name, _ in boxes} == {f"GENE{i:03d}_LONGNAME" for i in range(4)}
    for (a, box_a), (b, box_b) in combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"labels {a} and {b} overlap"
    inside = figure.axes[0].get_window_extent(figure.canvas.get_renderer())
    assert all(inside.x0 <= box.x0 and box.x1 <= inside.x1 and box.y1 <= inside.y1 for _, box in boxes)
    ticks = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert ticks == ["chr1", "chr2", "chr3", "chr4", "chr5", "chr6"]


def test_manhattan_keeps_chromosome_names_as_given(tmp_path):
    from enpact.plots_twas import manhattan_plot

    figure = manhattan_plot(["2", "10", "1", "X"], np.array([5.0, 8.0, 3.0, 1.0]), np.array([0.5, 0.1, 0.2, 0.3]),
                            tmp_path / "m.png")
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["1", "2", "10", "X"]


def test_every_plot_shares_one_size_and_style(tmp_path):
    from enpact.plots_training import FIGURE_DPI, FIGURE_SIZE, plot_baseline_comparison, plot_observed_vs_predicted
    from enpact.plots_twas import manhattan_plot, qq_plot
    from enpact.report import _accuracy_plot, _linearization_plot

    rng = np.random.default_rng(2)
    observed = rng.normal(size=90)
    splits = np.repeat(["train", "valid", "test"], 30)
    metrics = {s: {"pearson_r": 0.5} for s in ("train", "valid", "test")}
    paths = [plot_observed_vs_predicted(observed, observed + rng.normal(size=90), splits, metrics, tmp_path / "a.png"),
             plot_baseline_comparison(metrics, metrics, "track", tmp_path / "b.png")]
    p = rng.uniform(size=50)
    qq = qq_plot(p, tmp_path / "c.png")
    manhattan = manhattan_plot(["chr1"] * 25 + ["chr2"] * 25, rng.uniform(0, 1e6, 50), p, tmp_path / "d.png")
    paths += [tmp_path / "c.png", tmp_path / "d.png"]
    accuracy = pd.DataFrame({"r": rng.uniform(-1, 1, 40), "null_r": rng.uniform(-0.3, 0.3, 40)})
    paths.append(_accuracy_plot(accuracy, tmp_path / "e.png"))
    fits = pd.DataFrame({"cv_R2_avg": rng.uniform(-1.5, 1, 40), "rho_avg": rng.uniform(0, 1, 40)})
    paths.append(_linearization_plot(fits, 0.1, tmp_path / "f.png"))
    expected = (round(FIGURE_SIZE[0] * FIGURE_DPI), round(FIGURE_SIZE[1] * FIGURE_DPI))
    assert {path.name: _png_size(path) for path in paths} == {path.name: expected for path in paths}
    for figure in (qq, manhattan):
        axes = figure.axes[0]
        assert not axes.spines["top"].get_visible() and not axes.spines["right"].get_visible()
        assert axes.title.get_fontsize() == 10.0 and axes.xaxis.label.get_fontsize() == 9.0


def test_demo_gwas_overlap_matches_twas_alignment(tmp_path):
    """The report's flip count is the one enpact.twas.align_gwas applies, on the bundled demo GWAS."""
    import polars as pl

    from enpact.params import resolve_params
    from enpact.findings import gwas_overlap
    from enpact.predictdb import load_model_database
    from enpact.twas import GwasColumns, align_gwas, read_gwas

    params = resolve_params(None)  # the demo's parameters, schema defaults included
    with gzip.open(params["gwas"], "rt") as handle:
        gwas = pd.read_csv(handle, sep="\t", nrows=400)
    swap = set(range(0, 60, 3))  # a third of the model SNPs have the GWAS effect allele as their ref allele
    rows = []
    for i, snp in enumerate(gwas.head(60).itertuples()):
        ref, eff = snp.non_effect_allele, snp.effect_allele
        rows.append((f"G{i // 5}", snp.rsid, snp.variant_id, *((eff, ref) if i in swap else (ref, eff)), 0.1))
    db = _write_db(tmp_path / "demo.db", rows)
    counts = gwas_overlap(db, params["gwas"], params)
    model = load_model_database(db, params["snp_key"])
    columns = GwasColumns(snp=params["gwas_snp_column"], effect_allele=params["gwas_effect_allele_column"],
                          non_effect_allele=params["gwas_non_effect_allele_column"], zscore="zscore")
    table = read_gwas(params["gwas"], columns, model.all_keys, keep_non_rsid=True)
    aligned = align_gwas(table, model, has_beta=False)
    merged = table.join(pl.DataFrame({"snp": model.entry_key.astype(str), "eff": model.entry_eff.astype(str)}),
                        on="snp")
    assert counts["model_snps"] == 60 and counts["found_in_gwas"] == 60
    assert counts["allele_matched"] == int(aligned.present.sum()) == 60
    assert counts["flipped"] == int((merged["effect_allele"] != merged["eff"]).sum()) == len(swap)


# ---------------------------------------------------------------------------------------------------------
# 7. planted truth (simulated data, parameter truth_causal_genes): recall, precision and signs of causal genes


def _write_signed_twas(path: Path, rows: list[tuple[str, float, float]]) -> Path:
    """A TWAS result table (S-PrediXcan columns) from (gene, zscore, pvalue) rows; NaN p-value: not tested."""
    table = pd.DataFrame([{"gene": g, "gene_name": f"NAME_{g}", "zscore": z, "effect_size": np.nan, "pvalue": p,
                           "var_g": 0.1, "pred_perf_r2": 0.5, "pred_perf_pval": 0.01, "pred_perf_qval": np.nan,
                           "n_snps_used": 2, "n_snps_in_cov": 2, "n_snps_in_model": 2} for g, z, p in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    table.sort_values("pvalue").to_csv(path, index=False, na_rep="NA")
    return path


def _write_truth(path: Path, rows: list[tuple[str, float]] | str) -> Path:
    """A truth table (tab-separated, header gene_id effect), or the given text as it is."""
    text = rows if isinstance(rows, str) else "gene_id\teffect\n" + "".join(f"{g}\t{e}\n" for g, e in rows)
    path.write_text(text)
    return path


# 20 tested genes (Bonferroni threshold 0.05 / 20 = 0.0025) and one without a p-value (not tested). BH q-values
# of the four smallest p-values: 2e-5, 1e-4, 3.3e-3, 0.02 (< 0.05); the next, p = 0.1 at rank 5, gives 0.4.
TWAS_ROWS = ([("G01", 4.9, 1e-6), ("G02", -4.4, 1e-5), ("G03", 3.5, 5e-4), ("G04", -2.9, 0.004)]
             + [(f"G{i:02d}", 1.0 if i % 2 else -1.0, 0.1 + 0.05 * (i - 5)) for i in range(5, 20)]
             + [("G20", 0.7, 0.5), ("G21", np.nan, np.nan)])
# causal: G01 (+, found, right sign), G02 (+, found, wrong sign), G04 (-, FDR hit only, right sign),
# G20 (-, tested, no hit), G21 (+, not tested); G03 is a non-causal hit; G19 is tested but not in the table
TRUTH_ROWS = ([("G01", 1.5), ("G02", 0.7), ("G03", 0), ("G04", -0.8)] + [(f"G{i:02d}", 0) for i in range(5, 19)]
              + [("G20", -1.0), ("G21", 2.0), ("G99", 0)])


def test_truth_section_recall_precision_and_signs_by_hand(tmp_path):
    outdir = tmp_path / "results"
    _write_signed_twas(outdir / "twas" / "height.csv", TWAS_ROWS)
    truth = _write_truth(tmp_path / "causal_genes.tsv", TRUTH_ROWS)
    write_report(outdir, _params(tmp_path, gwas=str(tmp_path / "height.tsv"), truth_causal_genes=str(truth)))
    summary = _summary(outdir)["truth"]
    assert summary["table"] == str(truth) and summary["genes"] == 21 and summary["causal_genes"] == 5
    got = summary["gwas"]["height"]
    assert (got["genes_tested"], got["causal_tested"], got["tested_not_in_table"]) == (20, 4, 1)
    assert got["matched_by"] == "gene id" and got["bonferroni_threshold"] == pytest.approx(0.0025)
    assert got["bonferroni"] == {"hits": 3, "causal_hits": 2, "recall": pytest.approx(2 / 5),
                                 "precision": pytest.approx(2 / 3), "signs_agree": 1, "signs_disagree": 1,
                                 "all_signs_agree": False}
    assert got["fdr"] == {"hits": 4, "causal_hits": 3, "recall": pytest.approx(3 / 5),
                          "precision": pytest.approx(3 / 4), "signs_agree": 2, "signs_disagree": 1,
                          "all_signs_agree": False}
    causal = {row["gene"]: row for row in got["causal"]}
    assert list(causal) == ["G01", "G02", "G04", "G20", "G21"]  # by p-value, untested last
    assert causal["G01"]["sign_agrees"] and not causal["G02"]["sign_agrees"] and causal["G04"]["sign_agrees"]
    assert causal["G04"]["fdr_hit"] and not causal["G04"]["bonferroni_hit"]
    assert causal["G04"]["qvalue"] == pytest.approx(0.02)
    assert not causal["G21"]["tested"] and causal["G21"]["zscore"] is None
    assert causal["G21"]["sign_agrees"] is None
    page = _page(outdir)
    assert "Planted truth: causal genes among the TWAS hits" in page
    assert "5 causal genes (planted effect ≠ 0) among 21 genes" in page
    assert "4 of the 5 causal genes were tested (among 20 genes" in page
    assert "1 tested gene is not in the truth table and counts as not causal" in page
    assert ("Bonferroni (p < 0.0025): 2 of 5 causal genes found (recall 0.40); 1 with the wrong sign; 2 of the 3 "
            "hits are causal (precision 0.67)") in page
    assert ("FDR (Benjamini-Hochberg q < 0.05): 3 of 5 causal genes found (recall 0.60); 1 with the wrong sign; "
            "3 of the 4 hits are causal (precision 0.75)") in page
    assert "G21 NAME_G21 2 no NA NA NA no no NA" in page  # the untested causal gene is listed as missed


def test_truth_section_all_signs_right_and_no_hits(tmp_path):
    outdir = tmp_path / "results"
    rows = [("G1", 5.0, 1e-7), ("G2", -4.8, 2e-6), ("G3", 0.5, 0.6), ("G4", -0.2, 0.8)]
    _write_signed_twas(outdir / "twas" / "height.csv", rows)
    truth = _write_truth(tmp_path / "truth.tsv", [("G1", 0.3), ("G2", -2.0), ("G3", 0), ("G4", 0)])
    write_report(outdir, _params(tmp_path, gwas=str(tmp_path / "height.tsv"), truth_causal_genes=str(truth)))
    got = _summary(outdir)["truth"]["gwas"]["height"]
    assert got["bonferroni"]["recall"] == 1.0 and got["bonferroni"]["precision"] == 1.0
    assert got["bonferroni"]["all_signs_agree"] is True and got["fdr"]["all_signs_agree"] is True
    assert "2 of 2 causal genes found (recall 1.00), all with the right sign; 2 of the 2 hits are causal" in \
        _page(outdir)
    # no hit at all: recall 0, precision undefined, signs not applicable
    _write_signed_twas(outdir / "twas" / "height.csv", [("G1", 1.0, 0.3), ("G2", -1.0, 0.4)])
    write_report(outdir, _params(tmp_path, gwas=str(tmp_path / "height.tsv"), truth_causal_genes=str(truth)))
    got = _summary(outdir)["truth"]["gwas"]["height"]
    assert got["fdr"] == {"hits": 0, "causal_hits": 0, "recall": 0.0, "precision": None, "signs_agree": 0,
                          "signs_disagree": 0, "all_signs_agree": None}
    assert "0 of 2 causal genes found (recall 0.00); no hits." in _page(outdir)


def test_truth_section_only_when_a_truth_table_is_named(tmp_path):
    outdir = tmp_path / "results"
    _write_signed_twas(outdir / "twas" / "height.csv", TWAS_ROWS)
    write_report(outdir, _params(tmp_path, gwas=str(tmp_path / "height.tsv")))
    assert "truth" not in _summary(outdir) and "Planted truth" not in _page(outdir)


def test_truth_gene_ids_match_without_version_or_are_explained(tmp_path):
    outdir = tmp_path / "results"
    _write_signed_twas(outdir / "twas" / "height.csv", [("ENSG1.2", 5.0, 1e-7), ("ENSG2.1", 0.1, 0.9)])
    truth = _write_truth(tmp_path / "truth.tsv", [("ENSG1.5", 1.0), ("ENSG2.3", 0)])
    params = _params(tmp_path, gwas=str(tmp_path / "height.tsv"), truth_causal_genes=str(truth))
    write_report(outdir, params)
    got = _summary(outdir)["truth"]["gwas"]["height"]
    assert got["matched_by"] == "gene id without version" and got["bonferroni"]["causal_hits"] == 1
    assert got["causal"][0]["gene"] == "ENSG1.2"  # named as in the TWAS table
    _write_truth(tmp_path / "truth.tsv", [("OTHER1", 1.0), ("OTHER2", 0)])
    write_report(outdir, params)
    assert "None of the 2 tested genes is in the truth table" in _page(outdir)
    assert _summary(outdir)["truth"]["gwas"]["height"]["causal_tested"] == 0


def test_unreadable_truth_table_is_explained_not_fatal(tmp_path):
    outdir = tmp_path / "results"
    _write_signed_twas(outdir / "twas" / "height.csv", TWAS_ROWS)
    truth = _write_truth(tmp_path / "truth.tsv", "gene\tbeta\nG01\t1\n")
    params = _params(tmp_path, gwas=str(tmp_path / "height.tsv"), truth_causal_genes=str(truth))
    write_report(outdir, params)
    assert "needs the tab-separated columns gene_id and effect; it has gene, beta" in _page(outdir)
    assert "gene_id and effect" in _summary(outdir)["truth"]["error"]
    _write_truth(tmp_path / "truth.tsv", "gene_id\teffect\nG01\t1\nG02\tbig\n")
    write_report(outdir, params)
    assert "line 3: effect 'big' is not a number" in _page(outdir)
    _write_truth(tmp_path / "truth.tsv", "gene_id\teffect\nG01\t1\nG01\t0\n")
    write_report(outdir, params)
    assert "gene 'G01' is listed twice" in _page(outdir)
    assert "2 genes tested" in _page(outdir) or "TWAS" in _page(outdir)  # the rest of the report is there


# ---------------------------------------------------------------------------------------------------------
# 4. what a geneticist asks first: where λGC comes from, what pred_perf_r2 is, the LD reference, observed r


def _lambda(pvalues: list[float]) -> float:
    """λGC from its definition: median chi-square (1 df) over the null median."""
    from scipy import stats

    return float(np.median(stats.chi2.isf(np.array(pvalues), 1)) / stats.chi2.ppf(0.5, 1))


def test_twas_section_explains_lambda_ld_reference_and_observed_r(tmp_path):
    outdir = tmp_path / "results"
    _write_db(outdir / "linearized" / "study.db", WEIGHTS)  # sample_info: 60 individuals
    gwas = _write_gwas(tmp_path / "height.tsv", [("chr1_100_A_G_b38", "G", "A", 1.0)])
    rng = np.random.default_rng(3)
    near = [1e-9, 1e-4, 3e-3, 0.01, 0.02, 0.04]               # a hit and its LD neighbours
    far = list(rng.uniform(0.05, 1.0, 20))                     # the rest: null
    genes = [f"G{i}" for i in range(len(near) + len(far))]
    _write_twas(outdir / "twas" / "height.csv", list(zip(genes, near + far)))
    (outdir / "finemap").mkdir()
    pd.DataFrame({"region": "chr1:0-1000000", "gene": genes[:len(near)], "gene_name": "x", "chrom": "chr1",
                  "position": 100, "zscore": 1.0, "pvalue": near, "pip": 0.5, "in_credible_set": True,
                  "credible_set_size": 6, "null_pip": 0.0, "null_in_credible_set": False, "n_genes": 6}).to_csv(
        outdir / "finemap" / "height.tsv", sep="\t", index=False)
    (outdir / "accuracy").mkdir()
    pd.DataFrame({"gene": ["G0", "G1"], "r": [0.81, -0.2], "p_positive": [0.005, 0.9]}).to_csv(
        outdir / "accuracy" / "personalized_accuracy.tsv", sep="\t", index=False)
    write_report(outdir, _params(tmp_path, gwas=str(gwas)))
    page = _page(outdir)
    assert (f"λ GC (median χ² over its null value) is {_lambda(near + far):.2f} over 26 genes. Inside the 1 "
            f"fine-mapping region around the significant genes it is {_lambda(near):.2f} (6 genes); outside them "
            f"{_lambda(far):.2f} (20 genes).") in page
    assert "The SNP covariance (LD) that S-PrediXcan uses comes from 60 linearization individuals ( vcf )" in page
    assert "fewer than about 500 individuals is noisy" in page and "covariance_vcf" in page
    assert "pred_perf_r2 is how well the linear model (SNP dosages) reproduces the personalized EnPACT" in page
    assert "r with observed p (r > 0)" in page and "NAME_G0 NA NA 1 1e-09" in page and "0.81 0.005" in page
    inflation = _summary(outdir)["twas"]["height"]["inflation"]
    assert inflation["genes_in_regions"] == 6 and inflation["genes_outside"] == 20


def test_ld_reference_names_the_reference_panel(tmp_path):
    outdir = tmp_path / "results"
    _write_db(outdir / "linearized" / "study.db", WEIGHTS)
    gwas = _write_gwas(tmp_path / "height.tsv", [("chr1_100_A_G_b38", "G", "A", 1.0)])
    _write_twas(outdir / "twas" / "height.csv", [("G1", 0.01), ("G2", 0.2)])
    samples = tmp_path / "panel_samples.txt"
    samples.write_text("".join(f"P{i}\n" for i in range(503)))
    write_report(outdir, _params(tmp_path, gwas=str(gwas), covariance_vcf=str(tmp_path / "panel.vcf.gz"),
                                 covariance_samples=str(samples)))
    page = _page(outdir)
    assert "comes from 503 individuals of the reference panel covariance_vcf ." in page
    assert "fewer than about 500" not in page


def test_counts_of_one_are_singular(tmp_path):
    outdir = tmp_path / "results"
    _write_db(outdir / "linearized" / "study.db", WEIGHTS)
    gwas = _write_gwas(tmp_path / "height.tsv", [("chr1_100_A_G_b38", "G", "A", 1.0)])
    _write_twas(outdir / "twas" / "height.csv", [("G1", 0.01)])
    write_report(outdir, _params(tmp_path, gwas=str(gwas)))
    page = _page(outdir)
    assert "1 gene tested;" in page and "over 1 gene." in page
    assert not re.search(r"\b1 (genes|individuals|regions)\b", page)
