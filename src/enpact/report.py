"""The run report: report/index.html (static, images embedded) and report/summary.json."""

from __future__ import annotations

import base64
import html
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from enpact.io import atomic_path  # noqa: E402
from enpact.layout import gwas_name  # noqa: E402
from enpact.params import resolve_gwas_files  # noqa: E402

log = logging.getLogger(__name__)

N_PERMUTATIONS = 200


def _image(path: Path) -> str:
    """An <img> with the PNG embedded as base64 (the report is one self-contained file)."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, float_format: str = "{:.3g}") -> str:
    """A small HTML table."""
    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return "NA" if not np.isfinite(value) else float_format.format(value)
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def training_section(outdir: Path, summary: dict) -> str:
    """Metrics per split, model versus the single-track baseline, and the model's plots."""
    metrics_path = outdir / "model" / "metrics.json"
    if not metrics_path.exists():
        return "<p>No model metrics found.</p>"
    metrics = json.loads(metrics_path.read_text())
    rows = []
    for split in ("train", "valid", "test"):
        model = (metrics.get("model") or {}).get(split) or {}
        baseline = ((metrics.get("baseline") or {}).get("metrics") or {}).get(split) or {}
        rows.append({"split": split, "n": model.get("n", 0), "model r": model.get("pearson_r", np.nan),
                     "model rho": model.get("spearman_rho", np.nan), "model R2": model.get("r2", np.nan),
                     "baseline r": baseline.get("pearson_r", np.nan)})
    summary["training"] = rows
    table = pd.DataFrame(rows).replace({None: np.nan})
    track = (metrics.get("baseline") or {}).get("track", "?")
    images = "".join(_image(p) for p in (outdir / "model" / "observed_vs_predicted.png",
                                         outdir / "model" / "baseline_comparison.png") if p.exists())
    return (f"<p>{html.escape(metrics.get('model_type', 'model'))} trained on the train chromosomes; valid and test "
            f"chromosomes were never seen in training. Baseline: the single predicted track "
            f"<code>{html.escape(str(track))}</code>, linearly scaled on train.</p>{_table(table)}{images}")


def _personalized_values(outdir: Path) -> tuple[pd.DataFrame, int, int]:
    """Individual values (loci x samples) of all merged personalized stores, and windows predicted / needed."""
    from enpact.store import read_personalized_store

    frames, predicted, needed = [], 0, 0
    for path in sorted((outdir / "personalized").glob("*.h5")):
        store = read_personalized_store(path, with_features=False)
        frames.append(pd.DataFrame(store.individual_values(), index=store.locus_ids, columns=store.samples))
        if store.n_unique_windows is not None:
            predicted += int(store.n_unique_windows.sum())
        needed += len(store.locus_ids) * (2 * len(store.samples) + 1)
    return (pd.concat(frames) if frames else pd.DataFrame()), predicted, needed


def personalized_accuracy(predicted: pd.DataFrame, observed: pd.DataFrame, seed: int = 0,
                          n_permutations: int = N_PERMUTATIONS) -> pd.DataFrame:
    """Per-gene correlation across shared individuals, with an empirical null from permuted individuals."""
    samples = [s for s in predicted.columns if s in observed.columns]
    genes = [g for g in predicted.index if g in observed.index]
    if len(samples) < 5 or not genes:
        return pd.DataFrame()
    pred = predicted.loc[genes, samples].to_numpy(np.float64)
    obs = observed.loc[genes, samples].to_numpy(np.float64)

    def rowwise_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = a - a.mean(axis=1, keepdims=True)
        b = b - np.nanmean(b, axis=1, keepdims=True)
        b = np.nan_to_num(b)
        denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denominator > 0, (a * b).sum(axis=1) / denominator, np.nan)

    r = rowwise_r(pred, obs)
    rng = np.random.default_rng(seed)
    null = np.stack([rowwise_r(pred[:, rng.permutation(len(samples))], obs) for _ in range(n_permutations)], axis=1)
    p = (1 + (np.abs(null) >= np.abs(r)[:, None]).sum(axis=1)) / (n_permutations + 1)
    return pd.DataFrame({"gene": genes, "r": r, "empirical_p": p, "null_sd": null.std(axis=1),
                         "null_r": null[:, 0]})


def _demo_note(params: dict) -> str:
    """A reminder that the bundled predictor is random, when the demo weights were used."""
    if Path(str(params.get("weights", ""))).name != "enformer_tiny":
        return ""
    return ("<p><i>The demo predictor is a tiny randomly initialised Enformer: its sensitivity to variants is "
            "unrelated to the simulated eQTLs, so correlations of either sign and no overall agreement are what "
            "to expect here. With real weights this section measures how well sequence-based predictions explain "
            "variation between individuals.</i></p>")


def personalized_section(outdir: Path, params: dict, summary: dict, expression: Path | None = None) -> str:
    """Deduplication figures and, when the observed matrix shares individuals with the VCF, accuracy."""
    from enpact.expression import read_expression

    values, predicted, needed = _personalized_values(outdir)
    if values.empty:
        return "<p>No personalized predictions found.</p>"
    summary["personalized"] = {"loci": int(values.shape[0]), "samples": int(values.shape[1]),
                               "windows_predicted": predicted, "haplotype_windows": needed}
    parts = [f"<p>{values.shape[0]} loci x {values.shape[1]} individuals. The predictor ran on {predicted:,} "
             f"distinct windows for {needed:,} haplotype and reference windows "
             f"({100 * predicted / max(needed, 1):.1f}%): identical windows are predicted once.</p>"]
    observed = read_expression(expression or params["expression"])
    accuracy = personalized_accuracy(values, observed, seed=int(params.get("seed", 0)))
    if accuracy.empty:
        parts.append("<p>The training matrix shares fewer than 5 individuals with the VCF: no personalized-accuracy "
                     "check.</p>")
        return "".join(parts)
    finite = accuracy.dropna(subset=["r"])
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(-1, 1, 41)
    ax.hist(finite["null_r"], bins=bins, alpha=0.5, label="permuted individuals (null)", color="grey")
    ax.hist(finite["r"], bins=bins, alpha=0.7, label="personalized vs observed", color="C0")
    ax.set_xlabel("per-gene Pearson r across individuals")
    ax.set_ylabel("genes")
    ax.legend()
    fig.tight_layout()
    plot = outdir / "report" / "personalized_accuracy.png"
    fig.savefig(plot, dpi=110)
    plt.close(fig)
    significant = int((finite["empirical_p"] < 0.05).sum())
    summary["personalized"]["accuracy"] = {"genes": int(len(finite)), "median_r": float(finite["r"].median()),
                                           "genes_empirical_p_below_0.05": significant,
                                           "permutations": N_PERMUTATIONS}
    accuracy.to_csv(outdir / "report" / "personalized_accuracy.tsv", sep="\t", index=False)
    parts.append(
        f"<h3>Personalized accuracy</h3><p>For {len(finite)} genes, Pearson r across the {values.shape[1]} shared "
        f"individuals between personalized EnPACT predictions and observed values: median r = "
        f"{finite['r'].median():.3f}; {significant} genes have an empirical p &lt; 0.05 against "
        f"{N_PERMUTATIONS} permutations of individuals (expected by chance: {0.05 * len(finite):.0f}). "
        f"Table: <a href=\"personalized_accuracy.tsv\">personalized_accuracy.tsv</a>.</p>{_demo_note(params)}"
        f"{_image(plot)}")
    return "".join(parts)


def linearization_section(outdir: Path, params: dict, summary: dict) -> str:
    """Distribution of cross-validated fit of the linear models, and what the filters kept."""
    name = params.get("name", "enpact")
    path = outdir / "linearized" / f"{name}.summary.tsv"
    if not path.exists():
        return "<p>No linearization summary found.</p>"
    table = pd.read_csv(path, sep="\t")
    ok = table[table["status"] == "ok"]
    kept = table[table["kept"].astype(str).str.lower().isin(["true", "1"])] if "kept" in table else table.iloc[:0]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    r2 = ok["cv_R2_avg"].dropna()
    axes[0].hist(r2.clip(lower=-1), bins=np.linspace(-1, 1, 41), color="C1")
    axes[0].set_xlabel("cross-validated R2 (linear model vs personalized)" +
                       (f"\n{int((r2 < -1).sum())} loci below -1 shown at -1" if (r2 < -1).any() else ""))
    axes[0].set_ylabel("loci")
    axes[1].hist(ok["rho_avg"].dropna(), bins=30, color="C2")
    axes[1].axvline(float(params.get("db_rho_threshold", 0.1)), color="k", ls="--", lw=1)
    axes[1].set_xlabel("rho_avg (mean fold correlation)")
    fig.tight_layout()
    plot = outdir / "report" / "linearization_fit.png"
    fig.savefig(plot, dpi=110)
    plt.close(fig)
    reasons = table.loc[table["status"] != "ok", "reason"].value_counts()
    summary["linearization"] = {"loci": int(len(table)), "fitted": int(len(ok)), "kept": int(len(kept)),
                                "median_cv_R2": float(ok["cv_R2_avg"].median()) if len(ok) else None,
                                "skipped": {str(k): int(v) for k, v in reasons.items()}}
    db = outdir / "linearized" / f"{name}.db"
    n_snps = 0
    if db.exists():
        with sqlite3.connect(db) as connection:
            n_snps = connection.execute("SELECT COUNT(*) FROM weights").fetchone()[0]
    skipped = ", ".join(f"{k}: {v}" for k, v in reasons.items()) or "none"
    return (f"<p>{len(table)} loci; {len(ok)} fitted (skipped: {html.escape(skipped)}); median cross-validated R2 "
            f"{ok['cv_R2_avg'].median():.3f}. <b>{len(kept)} genes kept</b> by the filters (zscore_pval &lt; "
            f"{params.get('db_pval_threshold', 0.05)}, rho_avg &gt; {params.get('db_rho_threshold', 0.1)}, at least one "
            f"SNP) with {n_snps} weights in <code>linearized/{html.escape(name)}.db</code>.</p>{_image(plot)}")


def twas_section(outdir: Path, params: dict, summary: dict) -> str:
    """QQ and Manhattan plots and the top associations per GWAS."""
    parts = []
    summary["twas"] = {}
    for gwas in resolve_gwas_files(params.get("gwas")):
        stem = gwas_name(gwas)
        csv = outdir / "twas" / f"{stem}.csv"
        if not csv.exists():
            continue
        results = pd.read_csv(csv, na_values=["NA"])
        n_tests = int(results["pvalue"].notna().sum())
        threshold = 0.05 / max(n_tests, 1)
        n_hits = int((results["pvalue"] < threshold).sum())
        summary["twas"][stem] = {"genes": n_tests, "bonferroni_hits": n_hits}
        top = results.head(10)[["gene", "gene_name", "zscore", "pvalue", "pred_perf_r2", "n_snps_used"]]
        images = "".join(_image(p) for p in (outdir / "twas" / f"{stem}.qq.png", outdir / "twas" / f"{stem}.manhattan.png")
                         if p.exists())
        parts.append(f"<h3>{html.escape(stem)}</h3><p>{n_tests} genes tested; {n_hits} below the Bonferroni threshold "
                     f"{threshold:.2g}. Full table: <code>twas/{html.escape(stem)}.csv</code>.</p>{images}{_table(top)}")
    return "".join(parts) or "<p>No GWAS given: no TWAS.</p>"


def timings_section(outdir: Path, summary: dict) -> str:
    """Seconds per step group."""
    path = outdir / "pipeline_info" / "timings.tsv"
    if not path.exists():
        return "<p>No timings recorded.</p>"
    timings = pd.read_csv(path, sep="\t")
    grouped = timings.groupby("group", sort=False).agg(seconds=("seconds", "sum"), steps=("step", "count"),
                                                       cached=("status", lambda s: int((s == "cached").sum())))
    summary["timings"] = {g: float(s) for g, s in grouped["seconds"].items()}
    return _table(grouped.reset_index())


def inputs_section(outdir: Path, params: dict) -> str:
    """Parameters and software versions."""
    keys = ["fasta", "annotation", "expression", "vcf", "gwas", "weights", "model_type", "bins", "train_chroms",
            "valid_chroms", "test_chroms", "loci_per_chunk", "samples_per_chunk", "snp_key", "name", "outdir"]
    frame = pd.DataFrame([(k, params.get(k)) for k in keys if k in params], columns=["parameter", "value"])
    versions_path = outdir / "pipeline_info" / "software_versions.json"
    versions = json.loads(versions_path.read_text()) if versions_path.exists() else {}
    version_frame = pd.DataFrame(sorted(versions.items()), columns=["software", "version"])
    return (f"{_table(frame)}<p>All parameters: <code>pipeline_info/params.json</code>.</p>"
            f"<h3>Software</h3>{_table(version_frame)}")


STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:3px 8px;font-size:90%}
th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}code{background:#f6f6f6;padding:0 3px}"""


def write_report(outdir: Path, params: dict, expression: Path | None = None) -> Path:
    """Write report/index.html and report/summary.json from the outputs under outdir (`expression`: a readable
    copy of the training matrix, when params names one that is elsewhere, e.g. in object storage)."""
    report_dir = outdir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    sections = [
        ("What ran", inputs_section(outdir, params)),
        ("EnPACT model: fit on held-out chromosomes", training_section(outdir, summary)),
        ("Personalized predictions", personalized_section(outdir, params, summary, expression)),
        ("Linearization: how well linear SNP models approximate the personalized predictions",
         linearization_section(outdir, params, summary)),
        ("TWAS (S-PrediXcan)", twas_section(outdir, params, summary)),
        ("Timings", timings_section(outdir, summary)),
    ]
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>EnPACT report</title><style>{STYLE}"
            f"</style></head><body><h1>EnPACT report</h1>{body}</body></html>\n")
    index = report_dir / "index.html"
    with atomic_path(index) as tmp:
        tmp.write_text(page)
    with atomic_path(report_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=float) + "\n")
    log.info("report: %s", index)
    return index
