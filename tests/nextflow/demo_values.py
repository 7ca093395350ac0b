"""The test profile's results by value: what `nextflow run . -profile test` publishes and `enpact run` (no parameter
file, the same study) writes must agree with tests/nextflow/expected/ on every CPU.

The predictor's float32 kernels (MKL, oneDNN, ATen) are chosen by instruction set, so the bytes of the results differ
between classes of CPU (AVX2, AVX-512, AMX) although the science does not. tests/nextflow/expected/ therefore holds
the results as values (one gzipped TSV per table; loci.tsv itself, which holds no computed number), and `compare`
asks for:
- exactly the same loci, genes, kept decisions, variant counts and SNPs (varID, alleles), except SNPs whose weight
  is under MINOR_WEIGHT of their gene's largest, which may be in one run's model only;
- numbers within the tolerance of their column (TABLES).
The tolerances come from a measurement (docs/nextflow.md, "Results on other CPUs"): the demo run with torch's,
oneDNN's and MKL's kernels held to an older instruction set (ATEN_CPU_CAPABILITY=default, ONEDNN_MAX_CPU_ISA=SSE41,
MKL_ENABLE_INSTRUCTIONS=SSE4_2) against the same run on AVX2. Each tolerance is about 3x the largest deviation seen
there; the differences come from genes whose personalized predictions barely vary between individuals, where
float32 rounding of the predictor is a visible share of the variation. The fold p-values (zscore_pval,
pred.perf.pval) are not compared: a fold at |r| = 1 exactly and one at 1 - 1e-15 are scored very differently
(issue 25), so two genes' p-values jump between CPU classes. On one machine the two engines are compared byte for
byte instead (tests/test_nextflow_run.py).

    .venv/bin/python tests/nextflow/demo_values.py compare RESULTS_DIR    exit 1 with one line per difference
    .venv/bin/python tests/nextflow/demo_values.py --write                 run `enpact run` and write expected/ anew
"""

from __future__ import annotations

import argparse
import gzip
import io
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = ROOT / "tests" / "nextflow" / "expected"
NAME = "enpact_demo"

# table -> (key columns, columns compared exactly, {column: tolerance}); tolerances are absolute (abs), relative to
# the larger magnitude (rel), on the -log10 scale (log10p) or relative to the gene's largest |weight| (gene_max)
TABLES: dict[str, tuple[list[str], list[str], dict[str, tuple[str, float]]]] = {
    "loci": (["locus_id"], ["chrom", "center", "name", "split", "strand", "gene_type"], {}),
    "weights": (["gene", "varID"], ["rsid", "ref_allele", "eff_allele"], {"weight": ("gene_max", 0.02)}),
    "genes": (["gene"], [], {"pred.perf.R2": ("abs", 0.01)}),
    "summary": (["gene"], ["status", "kept", "n_snps_in_window", "n_snps_passing_filters"],
                {"cv_R2_avg": ("abs", 0.02), "rho_avg": ("abs", 0.01)}),
    "covariance": (["GENE", "RSID1", "RSID2"], [], {"VALUE": ("rel", 1e-9)}),
    "twas": (["gene"], [], {"zscore": ("abs", 0.05), "effect_size": ("rel", 0.03), "var_g": ("rel", 0.03),
                            "pvalue": ("log10p", 0.05)}),
    "accuracy": (["gene"], [], {"r": ("abs", 0.01), "predicted_sd": ("rel", 0.02)}),
}
# SNPs whose |weight| is under this fraction of their gene's largest may be in one run's model and not the other's
MINOR_WEIGHT = 0.02


def read_tables(outdir: Path) -> dict[str, pd.DataFrame]:
    """The compared tables of a run's output folder (the published files, read as users read them)."""
    linearized = outdir / "linearized"
    with sqlite3.connect(f"file:{linearized / f'{NAME}.db'}?mode=ro", uri=True) as connection:
        weights = pd.read_sql("SELECT gene, rsid, varID, ref_allele, eff_allele, weight FROM weights", connection)
        genes = pd.read_sql('SELECT gene, "n.snps.in.model", "pred.perf.R2", "pred.perf.pval" FROM extra', connection)
    with gzip.open(linearized / f"{NAME}.txt.gz", "rt") as handle:
        covariance = pd.read_csv(handle, sep=r"\s+")
    return {
        "loci": pd.read_csv(outdir / "loci" / "loci.tsv", sep="\t", dtype=str),
        "weights": weights,
        "genes": genes,
        "summary": pd.read_csv(linearized / f"{NAME}.summary.tsv", sep="\t", na_values=["NA"]),
        "covariance": covariance,
        "twas": pd.read_csv(outdir / "twas" / "gwas.csv", na_values=["NA"]),
        "accuracy": pd.read_csv(outdir / "accuracy" / "personalized_accuracy.tsv", sep="\t"),
    }


def read_expected(folder: Path = EXPECTED) -> dict[str, pd.DataFrame]:
    """The expected tables (tests/nextflow/expected/<table>.tsv.gz)."""
    out = {"loci": pd.read_csv(folder / "loci.tsv", sep="\t", dtype=str)}
    for table in TABLES:
        if table != "loci":
            out[table] = pd.read_csv(folder / f"{table}.tsv.gz", sep="\t")
    return out


def write_expected(outdir: Path, folder: Path = EXPECTED) -> None:
    """Write loci.tsv and the compared columns of a run's other tables to folder/<table>.tsv.gz (byte-deterministic
    gzip)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loci.tsv").write_bytes((outdir / "loci" / "loci.tsv").read_bytes())
    for table, frame in read_tables(outdir).items():
        if table == "loci":
            continue
        keys, exact, tolerances = TABLES[table]
        text = frame[keys + exact + list(tolerances)].to_csv(sep="\t", index=False, float_format="%.17g")
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as handle:
            handle.write(text.encode())
        (folder / f"{table}.tsv.gz").write_bytes(buffer.getvalue())


def _deviations(merged: pd.DataFrame, column: str, kind: str) -> np.ndarray:
    """|expected - got| of a column in the units of its tolerance kind (NaN where both are NaN)."""
    left = merged[f"{column}_expected"].to_numpy(float)
    right = merged[f"{column}_got"].to_numpy(float)
    if kind == "log10p":
        left, right = -np.log10(np.clip(left, 1e-300, None)), -np.log10(np.clip(right, 1e-300, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        deviation = np.abs(left - right)
        if kind == "rel":
            deviation = deviation / np.maximum(np.abs(left), np.abs(right))
        elif kind == "gene_max":
            deviation = deviation / merged["gene_max"].to_numpy(float)
    deviation[np.isnan(left) & np.isnan(right)] = np.nan
    deviation[np.isnan(left) != np.isnan(right)] = np.inf
    return deviation


def _merged(table: str, want: pd.DataFrame, have: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Rows of both runs side by side (columns suffixed _expected and _got), and the key problems."""
    keys = TABLES[table][0]
    want, have = want.astype({k: str for k in keys}), have.astype({k: str for k in keys})
    if table == "weights":   # minor SNPs of one run only are allowed; compared as weight 0 in the other
        scale = pd.concat([want, have]).assign(size=lambda f: f["weight"].abs()).groupby("gene")["size"].max()
        merged = want.merge(have, on=keys, how="outer", suffixes=("_expected", "_got"))
        merged["gene_max"] = merged["gene"].map(scale)
        alone = merged["weight_expected"].isna() | merged["weight_got"].isna()
        size = merged[["weight_expected", "weight_got"]].abs().max(axis=1) / merged["gene_max"]
        major = merged.loc[alone & (size >= MINOR_WEIGHT), keys].to_numpy().tolist()
        problems = [f"weights: {len(major)} SNPs with |weight| >= {MINOR_WEIGHT:g} of their gene's largest are in "
                    f"one run's models only (e.g. {major[:2]})"] if major else []
        merged = merged[~alone].reset_index(drop=True)
        return merged, problems
    want_keys = set(map(tuple, want[keys].to_numpy()))
    have_keys = set(map(tuple, have[keys].to_numpy()))
    problems = []
    if want_keys != have_keys:
        missing, extra = sorted(want_keys - have_keys), sorted(have_keys - want_keys)
        problems.append(f"{table}: {len(missing)} rows missing (e.g. {missing[:2]}), {len(extra)} unexpected "
                        f"(e.g. {extra[:2]})")
    return want.merge(have, on=keys, suffixes=("_expected", "_got")), problems


def _shared_covariance(expected: dict[str, pd.DataFrame],
                       got: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Both runs with covariance rows only for SNPs in both runs' models (a minor SNP of one run has its own rows)."""
    shared = set(map(tuple, expected["weights"][["gene", "varID"]].to_numpy())) & \
        set(map(tuple, got["weights"][["gene", "varID"]].to_numpy()))

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        first = pd.Series(list(zip(frame["GENE"], frame["RSID1"]))).isin(shared).to_numpy()
        second = pd.Series(list(zip(frame["GENE"], frame["RSID2"]))).isin(shared).to_numpy()
        return frame[first & second].reset_index(drop=True)

    return ({**expected, "covariance": keep(expected["covariance"])},
            {**got, "covariance": keep(got["covariance"])})


def compare(expected: dict[str, pd.DataFrame], got: dict[str, pd.DataFrame]) -> list[str]:
    """One line per difference beyond the tolerances (same keys and exact columns; numbers within tolerance)."""
    problems: list[str] = []
    expected, got = _shared_covariance(expected, got)
    for table, (keys, exact, tolerances) in TABLES.items():
        merged, key_problems = _merged(table, expected[table], got[table])
        problems += key_problems
        for column in exact:
            left, right = merged[f"{column}_expected"].astype(str), merged[f"{column}_got"].astype(str)
            bad = merged.loc[left != right, keys]
            if len(bad):
                problems.append(f"{table}.{column}: {len(bad)} rows differ (e.g. {bad.iloc[0].tolist()})")
        for column, (kind, tolerance) in tolerances.items():
            deviation = _deviations(merged, column, kind)
            bad = ~np.isnan(deviation) & (deviation > tolerance)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                problems.append(f"{table}.{column}: {int(bad.sum())} values beyond {kind} {tolerance:g} (e.g. "
                                f"{merged.loc[first, keys].tolist()}: {merged.loc[first, column + '_expected']!r} vs "
                                f"{merged.loc[first, column + '_got']!r})")
    return problems


def largest_deviations(expected: dict[str, pd.DataFrame], got: dict[str, pd.DataFrame]) -> dict[str, float]:
    """The largest deviation of each compared number, in the units of its tolerance (to set the tolerances)."""
    out = {}
    expected, got = _shared_covariance(expected, got)
    for table, (_keys, _exact, tolerances) in TABLES.items():
        merged, _ = _merged(table, expected[table], got[table])
        for column, (kind, _tolerance) in tolerances.items():
            deviation = _deviations(merged, column, kind)
            out[f"{table}.{column} ({kind})"] = float(np.nanmax(deviation)) if np.isfinite(deviation).any() else 0.0
    return out


def main() -> int:
    """compare RESULTS_DIR, or --write (run `enpact run` on the demo and write expected/ anew)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["compare", "measure"], help="compare a results folder")
    parser.add_argument("results", nargs="?", type=Path, help="a run's output folder")
    parser.add_argument("--write", action="store_true", help="run `enpact run` on the demo and write expected/")
    args = parser.parse_args()
    if args.write:
        with tempfile.TemporaryDirectory() as tmp:
            outdir = Path(tmp) / "results"
            subprocess.run([sys.executable, "-m", "enpact", "run", "--outdir", str(outdir), "--no-progress"],
                           check=True)
            write_expected(outdir)
        return 0
    if args.results is None:
        parser.error("give a results folder")
    expected, got = read_expected(), read_tables(args.results)
    if args.command == "measure":
        for name, value in largest_deviations(expected, got).items():
            print(f"{name}\t{value:.3g}")
        return 0
    problems = compare(expected, got)
    for line in problems:
        print(f"{args.results}: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
