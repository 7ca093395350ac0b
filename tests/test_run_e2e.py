"""End to end: `enpact run` on the bundled demo, validated output by output; resume and determinism; user errors."""

from __future__ import annotations

import gzip
import json
import logging
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from enpact.cli import main
from enpact.params import demo_params

sys.path.insert(0, str(Path(__file__).resolve().parent / "nextflow"))

pytestmark = pytest.mark.slow


def _params_file(tmp: Path, outdir: Path, **changes) -> Path:
    params = {**demo_params(), "outdir": str(outdir), **changes}
    path = tmp / f"params_{outdir.name}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """The demo as a newcomer runs it: `enpact run` with no parameter file (outdir redirected); what it logged is
    kept in DEMO_LOG."""
    outdir = tmp_path_factory.mktemp("e2e") / "results"
    recorder = _Recorder()
    logging.getLogger("enpact").addHandler(recorder)
    try:
        assert main(["run", "--outdir", str(outdir), "--no-progress"]) == 0
    finally:
        logging.getLogger("enpact").removeHandler(recorder)
    DEMO_LOG[:] = recorder.records
    return outdir


class _Recorder(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


DEMO_LOG: list[logging.LogRecord] = []

# what the demo's closing line says its warnings are about, and the warnings each covers
EXPECTED_DEMO_WARNINGS = {
    "genes on chrX, which no split names": r"chrX|no split",
    "missing genotype calls": r"missing|genotype call",
    "cross-validation prefers the smallest penalty": r"smallest penalty|model_hyperparameters",
}


def test_the_demo_says_its_warnings_are_expected_and_each_is_one_it_names(demo_run):
    """A newcomer must be able to tell that the demo worked: it ends saying which warnings are expected, and every
    warning it gave is one of those."""
    closing = [r.getMessage() for r in DEMO_LOG if "the demo's warnings are expected" in r.getMessage()]
    assert len(closing) == 1
    for topic in EXPECTED_DEMO_WARNINGS:
        assert topic in closing[0], topic
    warnings = [r.getMessage() for r in DEMO_LOG if r.levelno >= logging.WARNING]
    assert warnings, "the demo gave no warning: update the closing line"
    unexplained = [w for w in warnings if not any(re.search(p, w) for p in EXPECTED_DEMO_WARNINGS.values())]
    assert not unexplained, f"warnings the demo's closing line does not explain: {unexplained}"


def test_fine_mapping_keeps_the_planted_causal_genes_in_their_credible_sets(demo_run):
    """The demo's causal genes with a significant region are in its credible set and most top their region
    (measured: all 6 in credible sets; 4 of 5 regions topped by a causal gene, docs/twas.md)."""
    summary = json.loads((demo_run / "report" / "summary.json").read_text())["finemap"]["gwas"]
    assert summary["causal_in_regions"] >= 5
    assert summary["causal_in_credible_set"] == summary["causal_in_regions"]
    assert summary["top_is_causal"] >= summary["regions_with_causal"] - 1


def test_every_output_exists(demo_run):
    expected = ["loci/loci.tsv", "loci/loci.dropped.tsv", "reference/reference.h5", "model/model.json",
                "model/metrics.json", "model/observed_vs_predicted.png", "model/baseline_comparison.png",
                "linearized/enpact_demo.db", "linearized/enpact_demo.txt.gz", "linearized/enpact_demo.summary.tsv",
                "twas/gwas.csv", "twas/gwas.qq.png", "twas/gwas.manhattan.png", "finemap/gwas.tsv", "report/index.html",
                "report/summary.json", "pipeline_info/params.json", "pipeline_info/software_versions.json",
                "pipeline_info/timings.tsv"]
    missing = [name for name in expected if not (demo_run / name).is_file()]
    assert not missing
    assert len(list((demo_run / "personalized").glob("*.h5"))) == 4  # one merged store per loci chunk


def test_demo_results_have_the_test_profile_values(demo_run):
    """The values `nextflow run . -profile test` must publish too (tests/nextflow/default.nf.test checks that side),
    on any class of CPU: same loci, genes, SNPs and decisions, numbers within tolerances (tests/nextflow/demo_values.py)."""
    import demo_values

    problems = demo_values.compare(demo_values.read_expected(), demo_values.read_tables(demo_run))
    assert not problems, "enpact run's demo results differ from tests/nextflow/expected/:\n" + "\n".join(problems)


def test_the_value_comparison_sees_a_changed_result(demo_run):
    """Planted failures: a dropped SNP, a flipped decision, a shifted z-score and another locus each fail it."""
    import demo_values

    expected = demo_values.read_expected()
    got = demo_values.read_tables(demo_run)
    weights = got["weights"]
    heaviest = weights.loc[weights["weight"].abs().idxmax()]
    planted = {
        "weights": weights.drop(index=heaviest.name),
        "summary": got["summary"].assign(kept=~got["summary"]["kept"].astype(bool)),
        "twas": got["twas"].assign(zscore=got["twas"]["zscore"] + 0.1),
        "loci": got["loci"].iloc[1:],
    }
    for table, frame in planted.items():
        problems = demo_values.compare(expected, {**got, table: frame})
        assert any(line.startswith(table) for line in problems), table


def _database(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"weights", "extra", "sample_info", "construction"} <= tables
        weights = pd.read_sql("SELECT gene, rsid, varID, ref_allele, eff_allele, weight FROM weights", connection)
        extra = pd.read_sql('SELECT gene, genename, "n.snps.in.model", "pred.perf.R2", "pred.perf.pval", '
                            '"pred.perf.qval" FROM extra ORDER BY gene', connection)
    return weights, extra


def test_database_and_covariance_are_valid_predictdb_files(demo_run):
    weights, extra = _database(demo_run / "linearized/enpact_demo.db")
    assert len(extra) > 100 and (extra["n.snps.in.model"] > 0).all()
    assert weights.groupby("gene").size().reindex(extra["gene"]).tolist() == extra["n.snps.in.model"].tolist()
    assert (extra["pred.perf.pval"] < 0.05).all()
    with gzip.open(demo_run / "linearized/enpact_demo.txt.gz", "rt") as handle:
        covariance = pd.read_csv(handle, sep=r"\s+")
    assert list(covariance.columns) == ["GENE", "RSID1", "RSID2", "VALUE"]
    genes_in_order = covariance["GENE"].drop_duplicates().tolist()
    assert genes_in_order == [g for g in extra["gene"] if g in set(genes_in_order)]
    assert covariance.groupby("GENE").ngroups == len(genes_in_order)  # contiguous rows per gene
    for gene, rows in covariance.groupby("GENE"):
        snps = set(weights.loc[weights["gene"] == gene, "varID"])
        assert set(rows["RSID1"]) | set(rows["RSID2"]) == snps
        assert len(rows) == len(snps) * (len(snps) + 1) // 2


def _brute_force_twas(weights: pd.DataFrame, covariance: pd.DataFrame, gwas: pd.DataFrame) -> pd.DataFrame:
    """S-PrediXcan written out per gene, independent of enpact.twas."""
    gwas = gwas.set_index("variant_id")
    out = []
    for gene, w in weights.groupby("gene"):
        rows = covariance[covariance["GENE"] == gene]
        used, z = [], []
        for _, snp in w.iterrows():
            if snp["varID"] not in gwas.index:
                continue
            g = gwas.loc[snp["varID"]]
            if {g["effect_allele"], g["non_effect_allele"]} != {snp["eff_allele"], snp["ref_allele"]}:
                continue
            sign = 1.0 if g["effect_allele"] == snp["eff_allele"] else -1.0
            used.append(snp)
            z.append(sign * float(np.float32(g["zscore"])))
        if not used:
            continue
        ids = [u["varID"] for u in used]
        sigma = np.zeros((len(ids), len(ids)))
        for _, r in rows.iterrows():
            if r["RSID1"] in ids and r["RSID2"] in ids:
                i, j = ids.index(r["RSID1"]), ids.index(r["RSID2"])
                sigma[i, j] = sigma[j, i] = r["VALUE"]
        wv = np.array([u["weight"] for u in used])
        var_g = wv @ sigma @ wv
        zscore = np.sum(wv * np.sqrt(np.diag(sigma)) * np.array(z)) / np.sqrt(var_g)
        out.append((gene, zscore, 2 * stats.norm.sf(abs(zscore)), len(used)))
    return pd.DataFrame(out, columns=["gene", "zscore", "pvalue", "n_snps_used"]).set_index("gene")


def test_twas_rows_equal_a_recomputation_from_db_covariance_and_gwas(demo_run):
    weights, _ = _database(demo_run / "linearized/enpact_demo.db")
    with gzip.open(demo_run / "linearized/enpact_demo.txt.gz", "rt") as handle:
        covariance = pd.read_csv(handle, sep=r"\s+")
    gwas = pd.read_csv(demo_params()["gwas"], sep="\t")
    expected = _brute_force_twas(weights, covariance, gwas)
    results = pd.read_csv(demo_run / "twas/gwas.csv", na_values=["NA"])
    assert list(results.columns) == ["gene", "gene_name", "zscore", "effect_size", "pvalue", "var_g", "pred_perf_r2",
                                     "pred_perf_pval", "pred_perf_qval", "n_snps_used", "n_snps_in_cov",
                                     "n_snps_in_model"]
    assert results["pvalue"].is_monotonic_increasing
    results = results.set_index("gene")
    assert set(results.index) == set(expected.index)
    np.testing.assert_allclose(results.loc[expected.index, "zscore"], expected["zscore"], atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(results.loc[expected.index, "pvalue"], expected["pvalue"], rtol=1e-5)
    assert (results.loc[expected.index, "n_snps_used"] == expected["n_snps_used"]).all()


def test_report_references_files_that_exist(demo_run):
    page = (demo_run / "report/index.html").read_text()
    for section in ("held-out", "Personalized accuracy", "genes kept", "TWAS", "Planted truth", "Timings"):
        assert section in page
    links = re.findall(r'(?:href|src)="([^"]+)"', page)
    local = [link for link in links if not link.startswith(("data:", "http", "#"))]
    assert all((demo_run / "report" / link).exists() for link in local)
    assert page.count("data:image/png;base64,") >= 5


# The demo's planted truth (src/enpact/data/demo/README.md): expression is a planted EnPACT function of the tiny
# Enformer's features of each individual's haplotypes, plus noise; the GWAS trait is driven by the genetic
# expression of a few causal genes. A working chain recovers both; margins leave room for small changes elsewhere.

TRUTH = Path(demo_params()["truth_causal_genes"]).parent


def _bh(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values, written out here independently of enpact.report."""
    order = np.argsort(pvalues)
    n = len(pvalues)
    scaled = pvalues[order] * n / np.arange(1, n + 1)
    q = np.empty(n)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def test_demo_model_fits_held_out_chromosomes_better_than_one_track(demo_run):
    metrics = json.loads((demo_run / "model/metrics.json").read_text())
    for split in ("valid", "test"):
        model_r = metrics["model"][split]["pearson_r"]
        assert model_r > 0.85 and model_r > metrics["baseline"]["metrics"][split]["pearson_r"] + 0.1


def test_personalized_predictions_follow_observed_expression_where_the_planted_signal_is_substantial(demo_run):
    from enpact.store import read_personalized_store

    frames = []
    for path in sorted((demo_run / "personalized").glob("*.h5")):
        store = read_personalized_store(path, with_features=False)
        frames.append(pd.DataFrame(store.individual_values(), index=store.locus_ids, columns=store.samples))
    predicted = pd.concat(frames)
    observed = pd.read_csv(demo_params()["expression"], sep="\t", index_col="NAME")
    planted = pd.read_csv(TRUTH / "genetic_expression.tsv", sep="\t", index_col="NAME")
    signal = pd.read_csv(TRUTH / "gene_signal.tsv", sep="\t", index_col="gene_id")
    threshold = json.loads((TRUTH / "planted.json").read_text())["expression"]["substantial_h2"]
    samples = list(observed.columns)
    assert set(predicted.columns) == set(samples)

    def median_r(genes, truth: pd.DataFrame) -> float:
        r = [np.corrcoef(predicted.loc[g, samples], truth.loc[g, samples])[0, 1] for g in genes]
        return float(np.nanmedian(r))

    substantial = [g for g in predicted.index if signal.at[g, "cis_h2"] >= threshold]
    weak = [g for g in predicted.index if signal.at[g, "cis_h2"] < 0.1]
    assert len(substantial) > 50 and len(weak) > 20
    assert median_r(substantial, observed) > 0.5
    assert median_r(substantial, planted) > 0.7  # against the planted genetic values themselves (no noise)
    assert median_r(substantial, observed) > median_r(weak, observed) + 0.2  # more signal, better predictions
    accuracy = json.loads((demo_run / "report/summary.json").read_text())["personalized"]["accuracy"]
    assert accuracy["median_r"] > 0.3
    assert accuracy["significantly_positive"] > accuracy["genes"] / 2
    assert accuracy["strongly_negative"] < accuracy["expected_by_chance_each"] + 5


def test_twas_finds_most_planted_causal_genes_with_the_right_sign(demo_run):
    effect = pd.read_csv(TRUTH / "causal_genes.tsv", sep="\t", index_col="gene_id")["effect"]
    causal = effect[effect != 0]
    results = pd.read_csv(demo_run / "twas/gwas.csv", na_values=["NA"]).dropna(subset=["pvalue"]).set_index("gene")
    bonferroni = results.index[results["pvalue"] < 0.05 / len(results)]
    fdr = results.index[_bh(results["pvalue"].to_numpy()) < 0.05]
    found = {"bonferroni": causal.index.intersection(bonferroni), "fdr": causal.index.intersection(fdr)}
    assert len(found["fdr"]) / len(causal) >= 0.6
    assert len(found["bonferroni"]) / len(causal) >= 0.5
    for genes in found.values():
        assert (np.sign(results.loc[genes, "zscore"]) == np.sign(causal[genes])).all()
    # the report says the same (summary.json "truth")
    truth = json.loads((demo_run / "report/summary.json").read_text())["truth"]
    assert truth["table"] == demo_params()["truth_causal_genes"] and truth["causal_genes"] == len(causal)
    for rule, hits in (("bonferroni", bonferroni), ("fdr", fdr)):
        reported = truth["gwas"]["gwas"][rule]
        assert (reported["hits"], reported["causal_hits"]) == (len(hits), len(found[rule]))
        assert reported["recall"] == pytest.approx(len(found[rule]) / len(causal))
        assert reported["all_signs_agree"] is True


def test_interrupted_run_resumes_only_unfinished_chunks_and_is_identical(demo_run, tmp_path):
    outdir = tmp_path / "interrupted"
    params = _params_file(tmp_path, outdir)
    command = [sys.executable, "-m", "enpact", "-q", "run", "--params", str(params), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    chunks = outdir / "personalized" / "chunks"
    steps = outdir / "pipeline_info" / "steps.json"

    def finished_chunks() -> dict[str, int]:
        """Personalize chunks the run has recorded as complete (a file renamed into place but not yet recorded
        is legitimately computed again), with their modification times."""
        try:
            done = json.loads(steps.read_text())
        except (OSError, ValueError):
            return {}
        names = [f"{k.split('/')[1]}.part{int(k.split('/')[2].removeprefix('part')):04d}.h5" for k in done
                 if k.startswith("personalize/")]
        return {name: (chunks / name).stat().st_mtime_ns for name in names if (chunks / name).exists()}

    deadline = time.time() + 300
    while time.time() < deadline and not finished_chunks():
        if process.poll() is not None:
            pytest.fail(f"the run ended before personalize: {process.stderr.read().decode()}")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = finished_chunks()
    assert done_before and not (outdir / "linearized" / "enpact_demo.db").exists()
    assert (outdir / "pipeline_info" / "run.lock").exists()   # the killed run's lock, taken over by the rerun
    rerun = subprocess.run(command, capture_output=True)
    assert rerun.returncode == 0 and b"taking over the lock of an earlier run" in rerun.stderr
    assert not (outdir / "pipeline_info" / "run.lock").exists()
    timings = pd.read_csv(outdir / "pipeline_info/timings.tsv", sep="\t")
    status = dict(zip(timings["step"], timings["status"]))
    assert all(status[k] == "cached" for k in status if k.startswith("reference/"))
    personalize_steps = [k for k in status if k.startswith("personalize/")]
    cached = [k for k in personalize_steps if status[k] == "cached"]
    assert len(cached) == len(done_before) and len(personalize_steps) == 4   # one part per loci chunk
    assert all((chunks / name).stat().st_mtime_ns == mtime for name, mtime in done_before.items())
    assert not [p for p in chunks.iterdir() if p.name.startswith(".")]   # the killed run's temporary is gone
    for name in ("enpact_demo.db", "enpact_demo.txt.gz"):
        assert (outdir / "linearized" / name).read_bytes() == (demo_run / "linearized" / name).read_bytes()


def _one_line_error(command: list[str]) -> str:
    result = subprocess.run([sys.executable, "-m", "enpact", *command], capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1
    return errors[0]


def test_a_results_folder_copied_elsewhere_resumes_without_recomputing(demo_run, tmp_path):
    """Issue 24: `cp -a results elsewhere` then `enpact run --outdir elsewhere` reran every step."""
    copy = tmp_path / "copied"
    shutil.copytree(demo_run, copy, symlinks=True)   # copy2: modification times kept, as cp -a keeps them
    assert main(["run", "--outdir", str(copy), "--no-progress"]) == 0
    timings = pd.read_csv(copy / "pipeline_info/timings.tsv", sep="\t")
    steps = timings[~timings["group"].isin(["predictor", "total"])]
    assert (steps["status"] == "cached").all(), steps[steps["status"] != "cached"]["step"].tolist()


def test_user_errors_are_one_clear_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("fasta: [unclosed\n")
    assert "not valid YAML (line" in _one_line_error(["run", "--params", str(broken)])
    missing = _params_file(tmp_path, tmp_path / "a", vcf=str(tmp_path / "nope.vcf.gz"))
    assert "parameter 'vcf': file not found" in _one_line_error(["run", "--params", str(missing)])
    column = _params_file(tmp_path, tmp_path / "b", gwas_pvalue_column="p_value")
    assert "parameter 'gwas_pvalue_column': column 'p_value' is not in" in _one_line_error(
        ["run", "--params", str(column)])
    typo = _params_file(tmp_path, tmp_path / "c", binz=4)
    assert "unknown parameter 'binz' (did you mean 'bins'?)" in _one_line_error(["run", "--params", str(typo)])
    wrong_type = _params_file(tmp_path, tmp_path / "d", bins="four")
    assert "parameter 'bins'" in _one_line_error(["run", "--params", str(wrong_type)])
    assert not (tmp_path / "a").exists()
