"""The run report: report/index.html (static, images embedded) and report/summary.json.

Every section says what it measured and, where it is empty or degenerate, why, with the numbers that show it; the
numbers of the TWAS, S-MultiXcan, database-filter and planted-truth sections come from `enpact.findings`.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import logging
import platform
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from enpact import __version__
from enpact.errors import EnpactError
from enpact.findings import (
    ALPHA,
    database_filter_counts,
    inflation_findings,
    ld_reference,
    missing_call_counts,
    multixcan_findings,
    read_truth_table,
    truth_recovery,
    twas_findings,
)
from enpact.io import atomic_path
from enpact.layout import ACCURACY_SUMMARY, ACCURACY_TABLE, ResultsLayout, database_name, gwas_name
from enpact.params import resolve_gwas_files
from enpact.predictdb import count_weights, performance_columns
from enpact.plots_training import NULL_COLOUR, PRIMARY_COLOUR, new_figure, plot_style, save_figure

log = logging.getLogger(__name__)

MAX_STEP_ROWS = 500  # per-step timing rows shown in the page (all of them are in timings.tsv)
TOP_GENES = 10


def _image(path: Path) -> str:
    """An <img> with the PNG embedded as base64 (the report is one self-contained file)."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, float_format: str = "{:.3g}") -> str:
    """A small HTML table."""
    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return "NA" if not np.isfinite(value) else float_format.format(value)
        if value is None or value is pd.NA:
            return "NA"
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return f"{int(value):,}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _n(value: int) -> str:
    """An integer with thousands separators."""
    return f"{int(value):,}"


def _count(value: int, noun: str, plural: str | None = None) -> str:
    """A count with its noun in the right number: 1 gene, 2 genes (thousands separators)."""
    return f"{_n(value)} {noun if int(value) == 1 else plural or noun + 's'}"


# ---------------------------------------------------------------------------------------------------------
# what ran


def package_root() -> Path:
    """The folder above src/ when the package is used from a source checkout (src/enpact/report.py)."""
    return Path(__file__).resolve().parents[2]


def git_commit(root: Path | None = None) -> str | None:
    """HEAD of the git checkout the package lives in (with '+ uncommitted changes' when tracked files differ), or
    None when the package is not in a git checkout or git cannot say."""
    root = package_root() if root is None else Path(root)
    if not (root / ".git").exists() or not (root / "src" / "enpact").is_dir():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not head:
        return None
    return f"{head} + uncommitted changes" if changed else head


def cuda_available() -> bool | None:
    """Whether torch sees a CUDA device here; None when torch cannot be imported."""
    try:
        import torch
    except Exception:  # noqa: BLE001 - any import failure only means "unknown"
        return None
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return None


def run_info(params: dict) -> dict[str, Any]:
    """When, with which command, enpact version, git commit, host and device the report was made."""
    return {
        "made": datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds"),
        "command": shlex.join(sys.argv) if sys.argv else None,
        "enpact_version": __version__,
        "git_commit": git_commit(),
        "host": platform.node() or None,
        "device": params.get("device"),
        "cuda_available": cuda_available(),
    }


def _yes_no(value: bool | None) -> str:
    """yes / no / unknown."""
    return "unknown (torch not importable)" if value is None else ("yes" if value else "no")


def inputs_section(outdir: Path, params: dict, summary: dict) -> str:
    """The run itself (when, command, version, commit, host, device), parameters and software versions."""
    run = run_info(params)
    summary["run"] = run
    facts = pd.DataFrame([
        ("report made", run["made"]),
        ("command", run["command"] or "unknown"),
        ("enpact version", run["enpact_version"]),
        ("git commit", run["git_commit"] or "none (not a git checkout)"),
        ("host", run["host"] or "unknown"),
        ("device (parameter)", run["device"] if run["device"] is not None else "not set"),
        ("CUDA available here", _yes_no(run["cuda_available"])),
    ], columns=["", "value"])
    keys = ["fasta", "annotation", "expression", "vcf", "gwas", "weights", "model_type", "bins", "train_chroms",
            "valid_chroms", "test_chroms", "loci_per_chunk", "samples_per_chunk", "snp_key", "name", "outdir"]
    frame = pd.DataFrame([(k, params.get(k)) for k in keys if k in params], columns=["parameter", "value"])
    versions_path = ResultsLayout(outdir).software_versions
    versions = json.loads(versions_path.read_text()) if versions_path.exists() else {}
    version_frame = pd.DataFrame(sorted(versions.items()), columns=["software", "version"])
    return (f"{_table(facts)}<p>The command is the one that wrote this report (<code>enpact run</code>, or "
            f"<code>enpact report</code> for a rewritten report).</p><h3>Parameters</h3>{_table(frame)}"
            f"<p>All parameters: <code>pipeline_info/params.json</code>.</p><h3>Software</h3>{_table(version_frame)}")


# ---------------------------------------------------------------------------------------------------------
# EnPACT model


def _split_chromosomes(outdir: Path, params: dict) -> dict[str, str]:
    """Chromosomes of each split, from loci/loci.tsv when present, else from the *_chroms parameters."""
    loci = ResultsLayout(outdir).loci
    if loci.exists():
        try:
            table = pd.read_csv(loci, sep="\t", usecols=["chrom", "split"], dtype=str)
            return {split: ", ".join(pd.unique(group["chrom"])) for split, group in table.groupby("split", sort=False)}
        except (ValueError, OSError):
            pass
    return {split: str(params[f"{split}_chroms"]) for split in ("train", "valid", "test")
            if params.get(f"{split}_chroms")}


def _how_splits_were_used(model_type: str, training: dict, chroms: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A sentence on what each split did in fitting, and the per-split 'used in fitting' column."""
    def named(split: str) -> str:
        return f"{split} chromosomes" + (f" ({html.escape(chroms[split])})" if chroms.get(split) else "")

    used = {"train": "fitted", "valid": "not used", "test": "not used"}
    if model_type == "elastic_net":
        folds = training.get("folds")
        text = (f"Elastic net fitted on the {named('train')}; its penalty was chosen by "
                f"{f'{folds}-fold ' if folds else ''}cross-validation within them. The {named('valid')} and the "
                f"{named('test')} were not used in fitting: both rows are held-out estimates.")
        return text, used
    if model_type == "cnn":
        source = str(training.get("early_stopping_on", "valid split"))
        epochs = (f" (best epoch {training['best_epoch']} of {training['epochs_run']} run)"
                  if training.get("best_epoch") is not None and training.get("epochs_run") is not None else "")
        if source == "valid split":
            used["valid"] = "early stopping"
            text = (f"CNN fitted on the {named('train')}. The {named('valid')} chose when training stopped "
                    f"(early stopping keeps the epoch with the lowest valid error{epochs}), so the valid row is "
                    f"slightly optimistic. Only the {named('test')} were never used in fitting: the test row is the "
                    f"held-out estimate.")
        elif source == "none":
            text = (f"CNN fitted on the {named('train')} for the maximum number of epochs, without early stopping. "
                    f"The {named('valid')} and the {named('test')} were not used in fitting.")
        else:
            text = (f"CNN fitted on the {named('train')}; early stopping used {html.escape(source)} loci held out of "
                    f"them{epochs}. The {named('valid')} and the {named('test')} were not used in fitting.")
        return text, used
    used["valid"] = "unknown"
    text = (f"{html.escape(model_type)} model fitted on the {named('train')}; how it used the valid split is not "
            f"recorded. The {named('test')} were not used in fitting.")
    return text, used


def training_section(outdir: Path, params: dict, summary: dict, context: str | None = None) -> str:
    """Metrics per split, model versus the single-track baseline, what each split was used for, and the plots."""
    layout = ResultsLayout(outdir)
    model_dir = layout.context_model(context)
    metrics_path = model_dir / layout.metrics.name
    if not metrics_path.exists():
        return (f"<p>No model metrics: <code>{_relative(metrics_path, outdir)}</code> is not in "
                f"{html.escape(str(outdir))}.</p>")
    metrics = json.loads(metrics_path.read_text())
    model_json = model_dir / layout.model_json.name
    description = json.loads(model_json.read_text()) if model_json.exists() else {}
    model_type = str(description.get("model_type") or metrics.get("model_type") or "unknown")
    training = description.get("training") or metrics.get("training") or {}
    text, used = _how_splits_were_used(model_type, training, _split_chromosomes(outdir, params))
    rows = []
    for split in ("train", "valid", "test"):
        model = (metrics.get("model") or {}).get(split) or {}
        baseline = ((metrics.get("baseline") or {}).get("metrics") or {}).get(split) or {}
        rows.append({"split": split, "used in fitting": used[split], "n": model.get("n", 0),
                     "model r": model.get("pearson_r", np.nan), "model rho": model.get("spearman_rho", np.nan),
                     "model R2": model.get("r2", np.nan), "baseline r": baseline.get("pearson_r", np.nan)})
    summary["training"] = rows
    summary["training_use_of_splits"] = {"model_type": model_type, **used}
    table = pd.DataFrame(rows).replace({None: np.nan})
    empty = [r["split"] for r in rows if not r["n"]]
    note = (f"<p>No loci on the {', '.join(empty)} split{'s' if len(empty) > 1 else ''}: no estimate there "
            f"(NA).</p>" if empty else "")
    track = (metrics.get("baseline") or {}).get("track", "?")
    images = "".join(_image(model_dir / p.name) for p in layout.model_plots if (model_dir / p.name).exists())
    return (f"<p>{text} Baseline: the single predicted track <code>{html.escape(str(track))}</code>, chosen and "
            f"linearly scaled on train.</p>{_table(table)}{note}{images}")


# ---------------------------------------------------------------------------------------------------------
# personalized predictions


def _demo_note(params: dict) -> str:
    """What to expect of the demo, when its tiny predictor was used."""
    predictor = {"enformer_tiny": ("Enformer", "truth/gene_signal.tsv"),
                 "borzoi_tiny": ("Borzoi", "borzoi/planted.json")}.get(Path(str(params.get("weights", ""))).name)
    if predictor is None:
        return ""
    return (f"<p><i>The demo predictor is a tiny randomly initialised {predictor[0]}, and the demo's expression was "
            "simulated from its features of each individual's haplotypes, so positive correlations are expected "
            f"here for genes with a planted signal ({predictor[1]}). With real weights this section measures "
            "how well sequence-based predictions explain variation between individuals.</i></p>")


@plot_style
def _accuracy_plot(accuracy: pd.DataFrame, path: Path) -> Path:
    """Histogram of per-gene r next to one permutation of individuals."""
    figure, (ax,) = new_figure(1)
    bins = np.linspace(-1, 1, 41)
    ax.hist(accuracy["null_r"].dropna(), bins=bins, alpha=0.5, label="permuted individuals (null)", color=NULL_COLOUR)
    ax.hist(accuracy["r"].dropna(), bins=bins, alpha=0.7, label="personalized vs observed", color=PRIMARY_COLOUR)
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    ax.set_xlabel("per-gene Pearson r across individuals (a working model gives r > 0)")
    ax.set_ylabel("genes")
    ax.legend(loc="upper left")
    return save_figure(figure, path)


def personalized_section(outdir: Path, params: dict, summary: dict, context: str | None = None) -> str:
    """Deduplication figures and, when the observed matrix shares individuals with the VCF, accuracy (from the
    tables of the accuracy step)."""
    layout = ResultsLayout(outdir)
    accuracy_summary = layout.context_accuracy(context) / ACCURACY_SUMMARY
    accuracy_table = layout.context_accuracy(context) / ACCURACY_TABLE
    if not accuracy_summary.exists():
        reason = (f"{accuracy_summary.relative_to(layout.root)} is not in {outdir}; the accuracy step (after "
                  f"personalize) did not run, or its outputs were moved")
        summary["personalized"] = {"loci": 0, "reason": reason}
        return f"<p>No personalized predictions: {html.escape(reason)}.</p>"
    counts = json.loads(accuracy_summary.read_text())
    if not counts["loci"]:
        reason = "the personalized prediction stores hold no locus"
        summary["personalized"] = {"loci": 0, "reason": reason}
        return f"<p>No personalized predictions: {html.escape(reason)}.</p>"
    predicted, needed = counts["windows_predicted"], counts["haplotype_windows"]
    summary["personalized"] = {"loci": counts["loci"], "samples": counts["samples"], "windows_predicted": predicted,
                               "distinct_windows": counts.get("distinct_windows"),
                               "haplotype_windows": needed}
    parts = [f"<p>{_count(counts['loci'], 'locus', 'loci')} x {_count(counts['samples'], 'individual')}. The predictor ran on "
             f"{_n(predicted)} distinct windows for {_n(needed)} haplotype and reference windows "
             f"({100 * predicted / max(needed, 1):.1f}%): identical windows are predicted once.</p>"]
    accuracy = pd.read_csv(accuracy_table, sep="\t", dtype={"gene": str})
    shared, genes = counts["shared_individuals"], counts["shared_loci"]
    if accuracy.empty:
        reason = (f"the training matrix ({_n(counts['observed_samples'])} samples, {_n(counts['observed_features'])} "
                  f"features) shares {_n(shared)} of the {_n(counts['samples'])} VCF individuals and {_n(genes)} of "
                  f"the {_n(counts['loci'])} loci; at least {counts['min_shared_individuals']} shared individuals "
                  f"and one shared locus are needed")
        summary["personalized"]["accuracy"] = {"genes": 0, "shared_individuals": shared, "shared_loci": genes,
                                               "reason": reason}
        return "".join(parts) + f"<p>No personalized-accuracy check: {html.escape(reason)}.</p>"
    n_permutations = counts["permutations"]
    finite = accuracy.dropna(subset=["r"])
    n_shared = shared
    flat_pred = int((accuracy["predicted_sd"] == 0).sum())
    flat_obs = int(((accuracy["observed_sd"] == 0) | accuracy["observed_sd"].isna()).sum())
    undefined = (f" r is undefined for {_n(len(accuracy) - len(finite))} genes: {_n(flat_pred)} have the same "
                 f"personalized prediction for every individual (no variant in their windows changes it) and "
                 f"{_n(flat_obs)} have no variation in the observed values." if len(finite) < len(accuracy) else "")
    if finite.empty:
        summary["personalized"]["accuracy"] = {"genes": 0, "genes_shared": int(len(accuracy)),
                                               "constant_predictions": flat_pred, "constant_observed": flat_obs}
        return "".join(parts) + (f"<h3>Personalized accuracy</h3><p>{_count(len(accuracy), 'gene')} and {_n(n_shared)} "
                                 f"individuals are shared with the training matrix, but no correlation can be "
                                 f"computed.{undefined}</p>")
    plot = _accuracy_plot(finite, _context_file(layout.personalized_accuracy_plot, context))
    positive = int((finite["p_positive"] < ALPHA).sum())
    negative = int((finite["p_negative"] < ALPHA).sum())
    expected = ALPHA * len(finite)
    median = float(finite["r"].median())
    summary["personalized"]["accuracy"] = {
        "genes": int(len(finite)), "genes_shared": int(len(accuracy)), "individuals": n_shared, "median_r": median,
        "test": f"one-sided permutation test of r > 0 ({n_permutations} permutations of individuals)",
        "significantly_positive": positive, "strongly_negative": negative, "expected_by_chance_each": expected,
        "alpha": ALPHA, "permutations": n_permutations,
        "constant_predictions": flat_pred, "constant_observed": flat_obs,
    }
    parts.append(
        f"<h3>Personalized accuracy</h3><p>For {_count(len(finite), 'gene')}, Pearson r across the {_n(n_shared)} "
        f"individuals shared with the training matrix, between personalized EnPACT predictions and observed values "
        f"(a working model gives a <i>positive</i> r): median r = {median:.3f}.{undefined}</p>"
        f"<ul><li><b>{_count(positive, 'gene')} correlate significantly positively</b> (one-sided permutation p &lt; "
        f"{ALPHA} for r &gt; 0, {n_permutations} permutations of individuals; about {expected:.0f} expected by "
        f"chance alone).</li>"
        f"<li>{_count(negative, 'gene')} {'is' if negative == 1 else 'are'} <b>strongly negative</b>: their r lies in the lowest {ALPHA:.0%} of their own "
        f"permutation null (one-sided p &lt; {ALPHA} for r &lt; 0; about {expected:.0f} expected by chance). The "
        f"predictions rank these individuals in the opposite order to the observations: a wrong-sign prediction, "
        f"not a success, and not counted above.</li></ul>"
        f"<p>Table (r, p_positive, p_negative per gene): <code>{_relative(accuracy_table, outdir)}</code>.</p>"
        f"{_demo_note(params)}{_image(plot)}")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------------------
# linearization


@plot_style
def _linearization_plot(ok: pd.DataFrame, rho_threshold: float, path: Path) -> Path:
    """Cross-validated R2 and rho_avg distributions of the fitted loci."""
    figure, axes = new_figure(2)
    r2 = ok["cv_R2_avg"].dropna()
    axes[0].hist(r2.clip(lower=-1), bins=np.linspace(-1, 1, 41), color=PRIMARY_COLOUR)
    axes[0].set_xlabel("cross-validated R2 (linear model vs personalized)" +
                       (f"\n{int((r2 < -1).sum())} loci below -1 shown at -1" if (r2 < -1).any() else ""))
    axes[0].set_ylabel("loci")
    axes[1].hist(ok["rho_avg"].dropna(), bins=30, color=PRIMARY_COLOUR)
    axes[1].axvline(rho_threshold, color="k", ls="--", lw=1)
    axes[1].set_xlabel("rho_avg (mean fold correlation)")
    return save_figure(figure, path)


def linearization_section(outdir: Path, params: dict, summary: dict, context: str | None = None) -> str:
    """Distribution of cross-validated fit of the linear models, and what the filters kept."""
    name = database_name(params.get("name", "enpact"), context)
    path = ResultsLayout(outdir).linearization_summary(name)
    if not path.exists():
        return f"<p>No linearization summary: <code>linearized/{html.escape(name)}.summary.tsv</code> is missing.</p>"
    table = pd.read_csv(path, sep="\t")
    ok = table[table["status"] == "ok"]
    kept = table[table["kept"].astype(str).str.lower().isin(["true", "1"])] if "kept" in table else table.iloc[:0]
    reasons = table.loc[table["status"] != "ok", "reason"].fillna("no reason given").value_counts()
    skipped = ", ".join(f"{k}: {v}" for k, v in reasons.items()) or "none"
    median = float(ok["cv_R2_avg"].median()) if ok["cv_R2_avg"].notna().any() else None
    db = ResultsLayout(outdir).database(name)
    n_snps = 0
    if db.exists():
        n_snps = count_weights(db)
    filters = database_filter_counts(ok, params) if len(ok) else None
    missing = missing_call_counts(table, params)
    summary["linearization"] = {"loci": int(len(table)), "fitted": int(len(ok)), "kept": int(len(kept)),
                                "median_cv_R2": median, "weights": int(n_snps),
                                "skipped": {str(k): int(v) for k, v in reasons.items()}, "filters": filters,
                                "missing_calls": missing}
    pval, rho = params.get("db_pval_threshold", 0.05), params.get("db_rho_threshold", 0.1)
    if table.empty:
        return "<p>The linearization summary lists no loci: there was nothing to linearize.</p>"
    if ok.empty:
        return (f"<p>{_n(len(table))} loci, <b>none fitted</b> (skipped: {html.escape(skipped)}), so the database is "
                f"empty and there is no fit to show.</p>")
    plot = _linearization_plot(ok, float(rho), _context_file(ResultsLayout(outdir).linearization_plot, context))
    rho_column, pval_column = performance_columns(ok)  # the nested cross-validation's when it ran
    why = ""
    if not len(kept):
        why = (f" None passed all three: of {_n(filters['fitted'])} fitted loci, {_n(filters['zscore_pval'])} have "
               f"{pval_column} &lt; {pval}, {_n(filters['rho_avg'])} have {rho_column} &gt; {rho} and "
               f"{_n(filters['at_least_one_snp'])} keep at least one SNP, so the database is empty.")
    n_r2 = int(ok["cv_R2_avg"].notna().sum())
    median_text = (f"median cross-validated R2 {median:.3f}" if n_r2 else
                   f"no cross-validated R2 (undefined for all {_n(len(ok))} fitted loci: too few individuals or no "
                   f"variation to cross-validate)")
    return (f"<p>{_n(len(table))} loci; {_n(len(ok))} fitted (skipped: {html.escape(skipped)}); "
            f"{median_text}. <b>{_count(len(kept), 'gene')} kept</b> by the filters ({pval_column} &lt; "
            f"{pval}, {rho_column} &gt; {rho}, at least one SNP) with {_n(n_snps)} weights in "
            f"<code>linearized/{html.escape(name)}.db</code>.{why}{_missing_calls_text(missing)}</p>{_image(plot)}")


def _missing_calls_text(missing: dict | None) -> str:
    """What became of missing genotype calls in linearization, with the numbers (empty for an older summary)."""
    if missing is None:
        return ""
    if not missing["imputed_calls"] and not missing["sites_left_out"]:
        return " No genotype call of the variants given to the linear models was missing."
    share = f" ({missing['imputed_fraction']:.2%})" if missing["imputed_fraction"] is not None else ""
    return (f" Missing genotype calls: {_n(missing['imputed_calls'])} of the {_n(missing['genotypes'])} genotypes "
            f"given to the linear models{share}, summed over loci, got their site's mean dosage (so did the SNP "
            f"covariance's), and {_n(missing['sites_left_out'])} variant sites were left out for more than "
            f"{missing['max_missing']:g} of their calls missing (lin_max_missing); the haplotype sequences carry the "
            f"reference allele at a missing call.")


# ---------------------------------------------------------------------------------------------------------
# TWAS


def _why_no_genes(counts: dict[str, Any], params: dict) -> str:
    """The first reason, with numbers, why a GWAS tested no gene."""
    if not counts.get("genes_in_database"):
        return "the model database has no genes (see Linearization), so there is nothing to test"
    if not counts["found_in_gwas"]:
        return (f"0 of {_n(counts['model_snps'])} model SNPs found in the GWAS (model SNP ids are "
                f"{params.get('snp_key')}s such as <code>{html.escape(str(counts['example_model_snp']))}</code>; "
                f"the GWAS column <code>{html.escape(str(counts['snp_column']))}</code> holds ids such as "
                f"<code>{html.escape(str(counts['example_gwas_snp']))}</code>): use the same kind of id on both "
                f"sides (parameters snp_key and gwas_snp_column)")
    if not counts["read_by_twas"]:
        return (f"{_n(counts['found_in_gwas'])} of {_n(counts['model_snps'])} model SNPs are in the GWAS, but their "
                f"ids contain no 'rs' and S-PrediXcan reads only rsids unless gwas_keep_non_rsid: true")
    if not counts["allele_matched"]:
        return (f"{_n(counts['read_by_twas'])} model SNPs are in the GWAS but the alleles of none match the model's "
                f"(either way round): check the genome build and the allele columns")
    return (f"{_n(counts['allele_matched'])} model SNPs match the GWAS, but none of them has a finite z-score and "
            f"a covariance entry; check the GWAS z/p/beta columns and the covariance file")


def _top_table(results: pd.DataFrame, db: Path, snp_key: str, accuracy: Path | None = None) -> pd.DataFrame:
    """The top associations with chromosome, position (median of the gene's model SNPs), FDR q-value and, where the
    accuracy step ran, the personalized predictions' r with the observed values and its permutation p."""
    from enpact.predictdb import gene_positions_from_model

    try:
        positions = gene_positions_from_model(db, snp_key) if db.exists() else pd.DataFrame(columns=["gene"])
    except (EnpactError, sqlite3.DatabaseError):
        positions = pd.DataFrame(columns=["gene"])
    top = results.head(TOP_GENES).merge(positions, on="gene", how="left")
    if "chrom" not in top:
        top = top.assign(chrom=None, pos=np.nan)
    position = pd.to_numeric(top["pos"], errors="coerce")
    top = top.assign(position=[f"{int(round(v)):,}" if np.isfinite(v) else "NA" for v in position],
                     chrom=top["chrom"].fillna("NA"))
    columns = ["gene", "gene_name", "chrom", "position", "zscore", "pvalue", "qvalue", "pred_perf_r2", "n_snps_used"]
    if accuracy is not None and accuracy.exists():
        observed = pd.read_csv(accuracy, sep="\t", na_values=["NA"], dtype={"gene": str})[["gene", "r", "p_positive"]]
        top = top.merge(observed, on="gene", how="left")
        columns += ["r", "p_positive"]
    return top.loc[:, columns].rename(columns={"position": "position (median of model SNPs)",
                                               "qvalue": "FDR q-value", "r": "r with observed",
                                               "p_positive": "p (r > 0)"})


def _inflation_text(inflation: dict[str, Any]) -> str:
    """Where λGC comes from: inside or outside the regions around the significant genes."""
    text = (f"λ<sub>GC</sub> (median χ² over its null value) is {inflation['lambda_gc']:.2f} over "
            f"{_count(inflation['genes'], 'gene')}.")
    if "lambda_outside" not in inflation or not inflation["genes_in_regions"]:
        return f"<p>{text}</p>"
    inside, outside = inflation["lambda_in_regions"], inflation["lambda_outside"]
    text += (f" Inside the {_count(inflation['regions'], 'fine-mapping region')} around the significant genes it is "
             f"{inside:.2f} ({_count(inflation['genes_in_regions'], 'gene')}); outside them "
             + (f"{outside:.2f} ({_count(inflation['genes_outside'], 'gene')})." if inflation["genes_outside"]
                else "no gene is left."))
    if inflation["genes_outside"] and np.isfinite(outside) and outside < 1.2 <= inflation["lambda_gc"]:
        text += (" The inflation comes from genes near the associated ones, whose predicted expression shares SNPs "
                 "in LD with them (several genes per causal signal, see the fine-mapping below), not from a "
                 "genome-wide miscalibration.")
    elif inflation["genes_outside"] and np.isfinite(outside) and outside >= 1.2:
        text += (" It remains outside them: check the GWAS for confounding (its own λ<sub>GC</sub>), and calibrate "
                 "(gwas_n, gwas_h2) before reading the p-values at face value; a very polygenic trait does this too.")
    return f"<p>{text}</p>"


def _ld_reference_text(reference: dict[str, Any]) -> str:
    """The size and source of the LD reference, with advice when it is small."""
    n = reference["individuals"]
    if reference["source"] == "covariance_vcf":
        source = (f"{_count(n, 'individual')} of " if n is not None else "") + "the reference panel "
        source += "<code>covariance_vcf</code>"
    else:
        source = (f"{_count(n, 'linearization individual')}" if n is not None else "the linearization individuals")
        source += " (<code>vcf</code>)"
    text = f"The SNP covariance (LD) that S-PrediXcan uses comes from {source}."
    if n is not None and n < 500:
        text += (" LD from fewer than about 500 individuals is noisy and adds error to every gene's variance: for a "
                 "real study give a larger panel of the GWAS's ancestry as <code>covariance_vcf</code> (e.g. 1000 "
                 "Genomes or the GWAS's own reference).")
    return f"<p>{text}</p>"


def twas_section(outdir: Path, params: dict, summary: dict, context: str | None = None) -> str:
    """Per GWAS: SNP overlap with the model, genes tested, Bonferroni and FDR hits, QQ and Manhattan plots and the
    top associations with their position and q-value."""
    summary["twas"] = {}
    gwas_files = resolve_gwas_files(params.get("gwas"))
    if not gwas_files:
        return "<p>No GWAS given (parameter gwas): no TWAS.</p>"
    name = database_name(params.get("name", "enpact"), context)
    db = ResultsLayout(outdir).database(name)
    overview, parts = [], []
    for gwas in gwas_files:
        stem = gwas_name(gwas)
        csv = ResultsLayout(outdir).twas_table(stem, context)
        findings = twas_findings(db, gwas, csv, params)
        counts, results = findings["overlap"], findings["results"]
        n_tests, threshold = findings["genes"], findings["bonferroni_threshold"]
        n_hits, n_fdr = findings["bonferroni_hits"], findings["fdr_hits"]
        summary["twas"][stem] = {"genes": n_tests, "bonferroni_hits": n_hits, "fdr_hits": n_fdr, **counts}
        overview.append({"GWAS": stem, "genes in database": counts.get("genes_in_database", np.nan),
                         "model SNPs": counts.get("model_snps", np.nan),
                         "found in GWAS": counts.get("found_in_gwas", np.nan),
                         "allele-matched": counts.get("allele_matched", np.nan),
                         "with a usable z": counts.get("usable_z", np.nan),
                         "of which flipped": counts.get("flipped", np.nan),
                         "allele mismatch": counts.get("allele_mismatch", np.nan),
                         "genes tested": n_tests, "Bonferroni hits": n_hits, f"FDR < {ALPHA}": n_fdr})
        head = f"<h3>{html.escape(stem)}</h3>"
        if results is None:
            parts.append(f"{head}<p>No result table <code>{_relative(csv, outdir)}</code>: the TWAS step did not "
                         f"run for this GWAS{' (no model database)' if not db.exists() else ''}.</p>")
            continue
        overlap = ""
        if "model_snps" in counts:
            overlap = (f"{_n(counts['found_in_gwas'])} of {_n(counts['model_snps'])} model SNPs found in the GWAS; "
                       f"{_n(counts['allele_matched'])} match the model's alleles, {_n(counts['flipped'])} of them "
                       f"flipped (GWAS effect allele = model ref allele: z and beta change sign, as they should)"
                       + (f"; <b>{_n(counts['allele_matched'] - counts['usable_z'])} of the matched have no usable "
                          f"z-score</b> (missing or not a number) and are left out of their genes' tests"
                          if counts.get("usable_z", counts["allele_matched"]) < counts["allele_matched"] else
                          f"; all {_n(counts['allele_matched'])} have a usable z-score")
                       + (f", {_n(counts['allele_mismatch'])} match neither way round and are left out"
                          if counts["allele_mismatch"] else "") +
                       (f"; {_n(counts['found_in_gwas'] - counts['read_by_twas'])} found ids are not rsids and are "
                        f"not read (gwas_keep_non_rsid: false)" if counts["found_in_gwas"] > counts["read_by_twas"]
                        else "") + ". ")
        elif "error" in counts:
            overlap = f"SNP overlap not computed here ({html.escape(counts['error'])}). "
        if not n_tests:
            why = _why_no_genes(counts, params) if "model_snps" in counts else "see the TWAS step's log"
            parts.append(f"{head}<p>{overlap}<b>0 genes tested</b>: {why}.</p>")
            continue
        images = "".join(_image(p) for p in ResultsLayout(outdir).twas_plots(stem, context) if p.exists())
        accuracy = ResultsLayout(outdir).context_accuracy(context) / ACCURACY_TABLE
        top = _top_table(results, db, str(params.get("snp_key", "rsid")), accuracy)
        inflation = inflation_findings(results, ResultsLayout(outdir).finemap_table(stem, context))
        reference = ld_reference(db, params) if db.exists() else {"source": "vcf", "individuals": None}
        summary["twas"][stem].update(inflation=inflation, ld_reference=reference)
        meaning = ("<p><code>pred_perf_r2</code> is how well the linear model (SNP dosages) reproduces the "
                   "personalized EnPACT predictions of the linearization individuals, in cross-validation: the "
                   "agreement with the sequence model, not with measured expression. How well the personalized "
                   "predictions follow the measured values is <i>r with observed</i> (Pearson r across the "
                   "individuals with both, and its one-sided permutation p), from the accuracy step"
                   + ("" if accuracy.exists() else " (which did not run here)") + ".</p>")
        parts.append(f"{head}<p>{overlap}{_count(n_tests, 'gene')} tested; {_n(n_hits)} below the Bonferroni threshold "
                     f"{threshold:.2g}; {_n(n_fdr)} with a Benjamini-Hochberg FDR q-value &lt; {ALPHA}. Full table: "
                     f"<code>{_relative(csv, outdir)}</code>.</p>{images}{_inflation_text(inflation)}"
                     f"{_ld_reference_text(reference)}<h4>Top {len(top)} associations</h4>{_table(top)}{meaning}")
    return _table(pd.DataFrame(overview), float_format="{:,.0f}") + "".join(parts)


# ---------------------------------------------------------------------------------------------------------
# fine-mapping of the TWAS regions (enpact finemap)


def finemap_section(outdir: Path, params: dict, summary: dict, context: str | None = None) -> str | None:
    """Per GWAS: the regions around the significant genes, each one's top gene by PIP and credible set (with a
    planted truth, whether the causal genes top their regions); None without GWAS."""
    from enpact.findings import finemap_findings

    gwas_files = resolve_gwas_files(params.get("gwas"))
    if not gwas_files:
        return None
    truth = None
    if params.get("truth_causal_genes"):
        try:
            truth = read_truth_table(params["truth_causal_genes"])
        except EnpactError:
            truth = None   # the truth section says why
    summary["finemap"] = {}
    parts = [("<p>Neighbouring genes share eQTL SNPs and LD, so a causal gene makes its neighbours significant too. "
              "Fine-mapping (FOCUS's model, Mancuso et al. 2019) weighs every set of up to "
              f"{int(params.get('finemap_max_genes', 3))} causal genes in a region by how well it explains the "
              "region's z-scores given the correlation of the genes' predicted expression in the LD panel; a gene's "
              "posterior inclusion probability (PIP) is the probability that it is among the causal genes. Regions: "
              f"+-{int(params.get('finemap_window_bp', 1_000_000)):,} bp around each significant gene "
              "(parameter finemap_pvalue; default Bonferroni), merged when they overlap. The credible set holds the "
              f"genes, by PIP, that reach {float(params.get('finemap_credible_level', 0.9)):.0%} of the region's "
              "posterior (the null model, no causal gene, takes part).</p>")]
    for gwas in gwas_files:
        stem = gwas_name(gwas)
        path = ResultsLayout(outdir).finemap_table(stem, context)
        head = f"<h3>{html.escape(stem)}</h3>"
        if not path.exists():
            summary["finemap"][stem] = {"reason": "no fine-mapping table"}
            parts.append(f"{head}<p>No fine-mapping table <code>{_relative(path, outdir)}</code>.</p>")
            continue
        findings = finemap_findings(pd.read_csv(path, sep="\t", na_values=["NA"], dtype={"gene": str}), truth)
        summary["finemap"][stem] = findings
        if not findings["n_regions"]:
            parts.append(f"{head}<p>No gene is significant: no region to fine-map "
                         f"(<code>{_relative(path, outdir)}</code>).</p>")
            continue
        rows = pd.DataFrame([{"region": r["region"], "genes": r["genes"], "top gene": r["top_label"],
                              "top PIP": r["top_pip"], "credible set": ", ".join(r["credible_set"]),
                              "null PIP": r["null_pip"],
                              **({"causal genes (planted)": ", ".join(r["causal_genes"]) or "none",
                                  "top is causal": "yes" if r["top_is_causal"] else "no",
                                  "causal in credible set": f"{r['causal_in_credible_set']} of "
                                                            f"{len(r['causal_genes'])}"}
                                 if truth is not None else {})} for r in findings["regions"]])
        truth_line = ""
        if truth is not None:
            truth_line = (f" Planted truth: {_n(findings['regions_with_causal'])} regions hold "
                          f"{_n(findings['causal_in_regions'])} of the {_n(findings['causal_genes'])} causal genes; "
                          f"the causal gene has the highest PIP in {_n(findings['top_is_causal'])} of them, and "
                          f"{_n(findings['causal_in_credible_set'])} of the {_n(findings['causal_in_regions'])} "
                          "causal genes are in their region's credible set.")
        parts.append(f"{head}<p>{_count(findings['n_regions'], 'region')}, {_count(findings['genes_fine_mapped'], 'gene')}; "
                     f"median credible set size {findings['median_credible_set_size']:.3g}.{truth_line} Table: "
                     f"<code>{_relative(path, outdir)}</code>.</p>{_table(rows)}")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------------------
# planted truth (simulated data such as the demo: parameter truth_causal_genes)


def _recovery_sentence(rule: str, stats: dict[str, Any], total: int) -> str:
    """One list item: how many of the `total` causal genes a hit rule finds, their signs, and its precision."""
    found, hits = stats["causal_hits"], stats["hits"]
    signs = ("" if not found else ", all with the right sign" if stats["all_signs_agree"] else
             f"; {_n(stats['signs_disagree'])} with the wrong sign")
    precision = (f"{_n(found)} of the {_n(hits)} hits are causal (precision {stats['precision']:.2f})" if hits
                 else "no hits")
    recall = f" (recall {stats['recall']:.2f})" if stats["recall"] is not None else ""
    return f"<li><b>{rule}: {_n(found)} of {_n(total)} causal genes found</b>{recall}{signs}; {precision}.</li>"


def truth_section(outdir: Path, params: dict, summary: dict, context: str | None = None) -> str | None:
    """Causal genes of a planted truth table among the TWAS hits of every GWAS; None when no table is named."""
    path = params.get("truth_causal_genes")
    if not path:
        return None
    summary["truth"] = {"table": str(path)}
    try:
        truth = read_truth_table(path)
    except EnpactError as err:
        log.warning("report: %s", err)
        summary["truth"]["error"] = str(err)
        return f"<p>The truth table was not read: {html.escape(str(err))}.</p>"
    n_causal = int((truth != 0).sum())
    summary["truth"].update({"genes": int(len(truth)), "causal_genes": n_causal, "gwas": {}})
    intro = (f"<p>Truth table <code>{html.escape(str(path))}</code> (parameter truth_causal_genes): "
             f"{_n(n_causal)} causal genes (planted effect &ne; 0) among {_n(len(truth))} genes. A TWAS that works "
             f"finds the causal genes with the sign of their planted effect; non-causal hits are often genes in "
             f"linkage disequilibrium with a causal one.</p>")
    parts = [intro]
    for gwas in resolve_gwas_files(params.get("gwas")):
        stem = gwas_name(gwas)
        head = f"<h3>{html.escape(stem)}</h3>"
        csv = ResultsLayout(outdir).twas_table(stem, context)
        if not csv.exists():
            summary["truth"]["gwas"][stem] = {"genes_tested": 0, "reason": "no TWAS result table"}
            parts.append(f"{head}<p>No TWAS result table <code>{_relative(csv, outdir)}</code> to compare "
                         f"with.</p>")
            continue
        recovery = truth_recovery(pd.read_csv(csv, na_values=["NA"], dtype={"gene": str}), truth)
        summary["truth"]["gwas"][stem] = recovery
        if not recovery["genes_tested"]:
            parts.append(f"{head}<p>0 genes tested: nothing to compare with the truth table.</p>")
            continue
        unmatched = ""
        if not recovery["tested_in_table"]:
            unmatched = (f"<p><b>None of the {_n(recovery['genes_tested'])} tested genes is in the truth table</b>: "
                         f"its gene ids must be those of the annotation (as in <code>{_relative(csv, outdir)}"
                         f"</code>).</p>")
        elif recovery["tested_not_in_table"]:
            n = recovery["tested_not_in_table"]
            unmatched = (f"<p>{_n(n)} tested gene{'s are' if n != 1 else ' is'} not in the truth table and "
                         f"count{'' if n != 1 else 's'} as not causal.</p>")
        labels = {"bonferroni": f"Bonferroni (p &lt; {recovery['bonferroni_threshold']:.2g})",
                  "fdr": f"FDR (Benjamini-Hochberg q &lt; {ALPHA})"}
        items = "".join(_recovery_sentence(label, recovery[rule], n_causal) for rule, label in labels.items())
        columns = {"gene": "gene", "gene_name": "gene_name", "effect": "planted effect", "tested": "tested",
                   "zscore": "zscore", "pvalue": "pvalue", "qvalue": "FDR q-value", "bonferroni_hit": "Bonferroni hit",
                   "fdr_hit": "FDR hit", "sign_agrees": "sign agrees"}
        causal = pd.DataFrame(recovery["causal"], columns=list(columns)).rename(columns=columns)
        for column in ("tested", "Bonferroni hit", "FDR hit", "sign agrees"):
            causal[column] = [("yes" if v else "no") if v is not None else "NA" for v in causal[column]]
        parts.append(f"{head}<p>{_n(recovery['causal_tested'])} of the {_n(n_causal)} causal genes were tested "
                     f"(among {_count(recovery['genes_tested'], 'gene')}; a causal gene without a model counts as missed)."
                     f"</p>{unmatched}<ul>{items}</ul><h4>Causal genes</h4>{_table(causal)}")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------------------
# timings


def _seconds_label(seconds: float, status: str) -> str:
    """Seconds of a step; a cached step's seconds are those of the earlier run that computed it."""
    if status == "cached":
        return f"{seconds:,.2f} s (from an earlier run)" if seconds > 0 else "cached (time not recorded)"
    return f"{seconds:,.2f} s"


def timings_section(outdir: Path, summary: dict) -> str:
    """Seconds per step group and per step; cached steps show the seconds of the run that computed them."""
    path = ResultsLayout(outdir).timings
    if not path.exists():
        return "<p>No timings recorded (<code>pipeline_info/timings.tsv</code> is missing).</p>"
    timings = pd.read_csv(path, sep="\t", dtype={"group": str, "step": str, "status": str})
    timings["seconds"] = pd.to_numeric(timings["seconds"], errors="coerce").fillna(0.0)
    cached = (timings["status"] == "cached").to_numpy()
    grouped = (timings.assign(this_run=np.where(cached, 0.0, timings["seconds"]),
                              earlier=np.where(cached, timings["seconds"], 0.0), cached=cached)
               .groupby("group", sort=False)
               .agg(steps=("step", "count"), cached=("cached", "sum"), this_run=("this_run", "sum"),
                    earlier=("earlier", "sum")))
    summary["timings"] = {g: float(row.this_run + row.earlier) for g, row in grouped.iterrows()}
    summary["timing_steps"] = [{"group": g, "step": s, "seconds": float(x), "status": st} for g, s, x, st in
                               timings[["group", "step", "seconds", "status"]].itertuples(index=False)]
    groups = grouped.reset_index().rename(columns={"this_run": "seconds (this run)",
                                                   "earlier": "seconds (cached, from earlier runs)"})
    steps = timings.assign(time=[_seconds_label(s, st) for s, st in zip(timings["seconds"], timings["status"])])
    shown = steps.head(MAX_STEP_ROWS)
    more = (f"<p>First {MAX_STEP_ROWS} of {_n(len(steps))} steps; all are in "
            f"<code>pipeline_info/timings.tsv</code>.</p>" if len(steps) > MAX_STEP_ROWS else "")
    timed = cached & (timings["seconds"].to_numpy() > 0)
    note = (f"<p>{_n(int(cached.sum()))} steps were cached: their outputs came from an earlier run"
            + (f"; {_n(int(timed.sum()))} show the seconds of the run that computed them" if timed.any() else "")
            + (f"; {_n(int((cached & ~timed).sum()))} have no recorded time (0 in timings.tsv)"
               if (cached & ~timed).any() else "") + ".</p>" if cached.any() else "")
    return (f"{note}{_table(groups, float_format='{:,.1f}')}<p><i>predictor</i> is the time spent inside the "
            f"predictor (part of reference and personalize); <i>total</i> is the wall time of this run.</p>"
            f"<details><summary>Per step ({_n(len(steps))} steps)</summary>"
            f"{_table(shown[['group', 'step', 'time', 'status']])}{more}</details>")


# ---------------------------------------------------------------------------------------------------------
# the page


STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:3px 8px;font-size:90%}
th{background:#f3f3f3}img{width:100%;display:block;margin:1em 0}code{background:#f6f6f6;padding:0 3px}"""


CONTEXT_SECTIONS = (
    ("EnPACT model: fit on held-out chromosomes", training_section),
    ("Personalized predictions", personalized_section),
    ("Linearization: how well linear SNP models approximate the personalized predictions", linearization_section),
    ("TWAS (S-PrediXcan)", twas_section),
    ("Fine-mapping: which gene of a region is causal", finemap_section),
    ("Planted truth: causal genes among the TWAS hits", truth_section),
)


def context_names(params: dict, outdir: Path) -> list[str]:
    """The run's named contexts (empty for a single-context run): the sample sheet's order when it is readable
    here, else the models' folders by name (the Nextflow report task stages the results, not the sheet)."""
    if not params.get("contexts"):
        return []
    from enpact.contexts import read_context_sheet

    try:
        return [row["context"] for row in read_context_sheet(params["contexts"])]
    except EnpactError:
        model = ResultsLayout(outdir).model
        return sorted(p.parent.name for p in model.glob("*/model.json"))


def contexts_overview(names: list[str], summary: dict) -> str:
    """One row per context: loci, model fit on the test split, personalized accuracy, genes kept, TWAS hits."""
    rows = []
    for name in names:
        each = summary["contexts"][name]
        test = next((r for r in each.get("training", []) if r["split"] == "test"), {})
        accuracy = each.get("personalized", {}).get("accuracy", {})
        row = {"context": name, "loci": each.get("personalized", {}).get("loci", np.nan),
               "model r (test)": test.get("model r", np.nan),
               "median personalized r": accuracy.get("median_r", np.nan),
               "genes kept": each.get("linearization", {}).get("kept", np.nan)}
        for stem, twas in each.get("twas", {}).items():
            row[f"{stem}: genes tested"] = twas.get("genes", np.nan)
            row[f"{stem}: Bonferroni hits"] = twas.get("bonferroni_hits", np.nan)
            row[f"{stem}: FDR hits"] = twas.get("fdr_hits", np.nan)
        rows.append(row)
    return ("<p>One EnPACT model per context, all applied in one predictor pass over the union of the contexts' "
            "loci; each context has its own database, covariance and S-PrediXcan results.</p>"
            + _table(pd.DataFrame(rows)))


def write_report(outdir: Path, params: dict) -> Path:
    """Write report/index.html and report/summary.json from the outputs under outdir (it reads tables and draws
    plots; the analyses are steps that wrote those tables)."""
    outdir = Path(outdir)
    layout = ResultsLayout(outdir)
    layout.report.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    sections = [("What ran", inputs_section(outdir, params, summary))]
    names = context_names(params, outdir)
    if not names:
        sections += [(title, section(outdir, params, summary)) for title, section in CONTEXT_SECTIONS]
    else:
        summary["contexts"] = {}
        parts = []
        for name in names:
            each = summary["contexts"][name] = {}
            parts.append((f"Context {name}", "".join(
                f"<h3>{html.escape(title)}</h3>{content}" for title, section in CONTEXT_SECTIONS
                if (content := section(outdir, params, each, name)) is not None)))
        sections += [("Contexts", contexts_overview(names, summary)), *parts]
        multixcan = multixcan_section(outdir, params, summary, names)
        if multixcan is not None:
            sections.append(("S-MultiXcan: association across the contexts", multixcan))
    sections.append(("Timings", timings_section(outdir, summary)))
    sections = [(title, content) for title, content in sections if content is not None]
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>EnPACT report</title><style>{STYLE}"
            f"</style></head><body><h1>EnPACT report</h1>{body}</body></html>\n")
    index = layout.report_html
    with atomic_path(index) as tmp:
        tmp.write_text(page)
    with atomic_path(layout.report_summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    log.info("report: %s", index)
    return index


def multixcan_section(outdir: Path, params: dict, summary: dict, names: list[str]) -> str | None:
    """Per GWAS: genes tested across the contexts, Bonferroni and FDR hits, QQ plot, top genes; None without GWAS."""
    gwas_files = resolve_gwas_files(params.get("gwas"))
    if not gwas_files:
        return None
    layout = ResultsLayout(outdir)
    summary["multixcan"] = {}
    parts = []
    for gwas in gwas_files:
        stem = gwas_name(gwas)
        csv = layout.multixcan_table(stem)
        head = f"<h3>{html.escape(stem)}</h3>"
        if not csv.exists():
            parts.append(f"{head}<p>No S-MultiXcan table <code>{_relative(csv, outdir)}</code>.</p>")
            continue
        findings = multixcan_findings(csv)
        results, n_tests, threshold = findings["results"], findings["genes"], findings["bonferroni_threshold"]
        n_hits, n_fdr = findings["bonferroni_hits"], findings["fdr_hits"]
        several = findings["genes_in_several_contexts"]
        summary["multixcan"][stem] = {"genes": n_tests, "bonferroni_hits": n_hits, "fdr_hits": n_fdr,
                                      "genes_in_several_contexts": several}
        columns = [c for c in ("gene", "gene_name", "pvalue", "n", "n_indep", "p_i_best", "t_i_best", "eigen_max",
                               "eigen_min_kept", "z_min", "z_max") if c in results]
        top = results.sort_values("pvalue", kind="stable").head(10).loc[:, columns]
        qq = layout.multixcan_qq(stem)
        parts.append(f"{head}<p>{_count(n_tests, 'gene')} tested across {len(names)} contexts ({_n(several)} with a model in "
                     f"more than one); {_n(n_hits)} below the Bonferroni threshold {threshold:.2g}; {_n(n_fdr)} with "
                     f"a Benjamini-Hochberg FDR q-value &lt; {ALPHA}. Full table: <code>{_relative(csv, outdir)}"
                     f"</code>.</p>{_image(qq) if qq.exists() else ''}<h4>Top {len(top)} genes</h4>{_table(top)}")
    return ("<p>S-MultiXcan (as MetaXcan's SMulTiXcan.py): per gene, the contexts' S-PrediXcan z-scores tested "
            "jointly, with the correlation of predicted expression across contexts from the model weights and the "
            "SNP covariance, regularised by its principal components.</p>" + "".join(parts))


def _relative(path: Path, outdir: Path) -> str:
    """A results path as the report shows it: relative to the output folder, escaped."""
    try:
        return html.escape(str(Path(path).relative_to(outdir)))
    except ValueError:
        return html.escape(str(path))


def _context_file(path: Path, context: str | None) -> Path:
    """A report figure's file, with the context's name before the suffix in a run of several."""
    return path if context is None else path.with_name(f"{path.stem}_{context}{path.suffix}")


def _json_default(value: Any) -> Any:
    """numpy scalars and other leftovers as JSON values."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return str(value)
