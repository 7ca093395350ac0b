"""S-PrediXcan (`enpact twas`) against a plain per-gene numpy implementation of the SPrediXcan.py method."""

from __future__ import annotations

import gzip
import math
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from enpact.cli import build_parser, main
from enpact.errors import EnpactError
from enpact.twas import GwasColumns, output_paths, run_twas

RESULT_COLUMNS = ["gene", "gene_name", "zscore", "effect_size", "pvalue", "var_g", "pred_perf_r2", "pred_perf_pval",
                  "pred_perf_qval", "n_snps_used", "n_snps_in_cov", "n_snps_in_model"]
BASES = "ACGT"


# ---------------------------------------------------------------------------------------------------------
# fixture: a model database, a covariance file and a GWAS file with every harmonisation case


@dataclass
class Fixture:
    db: Path
    covariance: Path
    gwas: Path
    weights: list[tuple] = field(default_factory=list)  # (rsid, varID, gene, weight, ref, eff)
    extra: list[tuple] = field(default_factory=list)  # (gene, genename, n, r2, pval, qval, phi)
    cov_rows: list[tuple] = field(default_factory=list)  # (gene, id1, id2, value or None), keyed by rsid
    gwas_rows: list[dict] = field(default_factory=list)


def build_fixture(directory: Path, seed: int = 7) -> Fixture:
    """Write the fixture files and keep their contents for the reference implementation."""
    rng = np.random.default_rng(seed)
    snps = {}
    for i in range(1, 61):
        ref = BASES[rng.integers(4)]
        alt = BASES[(BASES.index(ref) + 1 + rng.integers(3)) % 4]
        chrom = 1 + (i - 1) // 20
        snps[i] = dict(rsid=f"rs{1000 + i}", varID=f"chr{chrom}_{10_000 * i}_{ref}_{alt}_b38", ref=ref, alt=alt)
    snps[40]["rsid"] = "esv40"  # an id without "rs": dropped unless --keep-non-rsid
    genes = {  # gene: model SNP numbers
        "G01": [1, 2, 3, 4], "G02": [5, 6, 7], "G03": [8, 9, 10], "G04": [11, 12], "G05": [13, 14],
        "G06": [4, 15, 16], "G07": [17, 18], "G09": [19, 20, 21], "G10": [22, 23], "G11": [24],
        "G12": [25, 26, 27, 28, 29], "G13": [40, 41, 42], "G14": [30, 31], "G15": [32, 33, 34],
    }
    not_in_extra, no_weights = "G07", "G08"
    weights = []
    for gene, members in genes.items():
        for s in members:
            weights.append((snps[s]["rsid"], snps[s]["varID"], gene, float(rng.normal(0, 0.5)), snps[s]["ref"],
                            snps[s]["alt"]))
    extra = []
    for gene in sorted(set(genes) | {no_weights}):
        if gene == not_in_extra:
            continue
        phi = None if gene == "G03" else (-0.001 if gene == "G05" else float(rng.uniform(0, 1e-4)))
        extra.append((gene, f"NAME_{gene}", len(genes.get(gene, [])), float(rng.uniform(0.01, 0.4)),
                      float(rng.uniform(1e-8, 0.01)), None, phi))
    # covariance, keyed by rsid
    cov_rows = []
    absent_from_cov, snp_absent_from_cov, mirrored, na_snp = "G05", 9, "G12", 27
    for gene, members in genes.items():
        if gene == absent_from_cov:
            continue
        ids = [snps[s]["rsid"] for s in members if s != snp_absent_from_cov]
        if gene == "G15":
            ids.append("rs9999")  # a covariance SNP outside the model still counts in n_snps_in_cov
        dose = rng.binomial(2, rng.uniform(0.1, 0.5, len(ids)), size=(60, len(ids))).astype(float)
        matrix = np.cov(dose, rowvar=False, ddof=1).reshape(len(ids), len(ids))
        if gene == "G11":
            matrix[:] = 0.0  # zero variance: var_g = 0, z undefined
        for i in range(len(ids)):
            for j in range(i, len(ids)):
                a, b = (ids[j], ids[i]) if gene == mirrored else (ids[i], ids[j])
                na = gene == mirrored and snps[na_snp]["rsid"] in (a, b)
                cov_rows.append((gene, a, b, None if na else float(matrix[i, j])))
    # GWAS rows: model SNPs with every case, plus unrelated SNPs
    gwas_rows = []
    def row(s, a1, a2, **values):
        entry = dict(SNP=snps[s]["rsid"] if isinstance(s, int) else s,
                     variant_id=snps[s]["varID"] if isinstance(s, int) else f"chr9_{rng.integers(1e8)}_A_C_b38",
                     A1=a1, A2=a2, Z=f"{rng.normal(0, 2):.6g}", BETA=f"{rng.normal(0, 0.05):.6g}",
                     SE=f"{rng.uniform(0.01, 0.03):.6g}", P=f"{rng.uniform(1e-6, 1):.6g}",
                     OR=f"{math.exp(rng.normal(0, 0.05)):.6g}")
        entry.update(values)
        gwas_rows.append(entry)
    swapped, neither, lowercase, missing_gwas = {2, 16, 26}, {6}, {3, 30}, {7, 11, 12, 21}
    for s in sorted(set(range(1, 43)) - {35, 36, 37, 38, 39}):
        if s in missing_gwas:
            continue
        ref, alt = snps[s]["ref"], snps[s]["alt"]
        if s in swapped:
            row(s, ref, alt)
        elif s in neither:
            row(s, alt, next(b for b in BASES if b not in (ref, alt)))
        elif s in lowercase:
            row(s, alt.lower(), ref.lower())
        elif s == 23:
            row(s, alt, ref)  # duplicated SNP: the last usable row wins
            row(s, alt, ref)
        elif s == 31:
            row(s, alt, ref, P="0")  # p = 0 goes through --input-pvalue-fix
        elif s == 33:
            row(s, alt, ref, Z="NA", P="NA", BETA="NA")  # no usable z
        else:
            row(s, alt, ref)
    for k in range(30):
        row(f"rs{50_000 + k}", "A", "G")
    db = directory / "model.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE weights (rsid TEXT, varID TEXT, gene TEXT, weight DOUBLE, "
                           "ref_allele CHARACTER, eff_allele CHARACTER)")
        connection.execute("CREATE TABLE extra (gene TEXT, genename TEXT, `n.snps.in.model` INTEGER, "
                           "`pred.perf.R2` DOUBLE, `pred.perf.pval` DOUBLE, `pred.perf.qval` DOUBLE, phi REAL)")
        connection.executemany("INSERT INTO weights VALUES (?, ?, ?, ?, ?, ?)", weights[::-1])
        connection.executemany("INSERT INTO extra VALUES (?, ?, ?, ?, ?, ?, ?)", extra[::-1])
    covariance = directory / "cov.txt.gz"
    with gzip.open(covariance, "wt") as handle:
        handle.write("GENE\tRSID1\tRSID2\tVALUE\n")
        for gene, a, b, v in cov_rows:
            handle.write(f"{gene}\t{a}\t{b}\t{'NA' if v is None else repr(v)}\n")
    gwas = directory / "gwas.txt.gz"
    write_gwas(gwas, gwas_rows)
    return Fixture(db, covariance, gwas, weights, extra, cov_rows, gwas_rows)


def write_gwas(path: Path, rows: list[dict], separator: str = "\t") -> None:
    """Write GWAS rows (all text) with a header."""
    columns = list(rows[0])
    text = separator.join(columns) + "\n" + "".join(separator.join(r[c] for c in columns) + "\n" for r in rows)
    path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())


def varid_covariance(fixture: Fixture, path: Path) -> Path:
    """The fixture's covariance keyed by varID instead of rsid."""
    to_varid = {rsid: var for rsid, var, *_ in fixture.weights}
    with gzip.open(path, "wt") as handle:
        handle.write("GENE RSID1 RSID2 VALUE\n")
        for gene, a, b, v in fixture.cov_rows:
            handle.write(f"{gene} {to_varid.get(a, a)} {to_varid.get(b, b)} {'NA' if v is None else repr(v)}\n")
    return path


# ---------------------------------------------------------------------------------------------------------
# the reference: SPrediXcan.py's method written plainly, one gene at a time


def number(text: str) -> float:
    """GWAS text to float, NA as NaN."""
    return float("nan") if text in ("NA", "") else float(text)


def reference_twas(fx: Fixture, source: str, key: str = "rsid", keep_non_rsid: bool = False,
                   beta_column: str | None = "BETA", calibration: tuple[float, float] | None = None) -> pd.DataFrame:
    """Expected results for the fixture, `source` being zscore, pvalue, beta_se, or_se or or_pvalue."""
    key_index = 0 if key == "rsid" else 1
    snp_column = "SNP" if key == "rsid" else "variant_id"
    all_keys = {w[key_index] for w in fx.weights}
    loaded = [r for r in fx.gwas_rows if r[snp_column] in all_keys and (keep_non_rsid or "rs" in r[snp_column])]
    betas, zs = [], []
    for r in loaded:
        if source.startswith("or"):
            betas.append(math.log(number(r["OR"])))
        else:
            betas.append(number(r[beta_column]) if beta_column else float("nan"))
    pfix = None
    if source in ("pvalue", "or_pvalue"):
        finite = [number(r["P"]) for r in loaded if number(r["P"]) > 0]
        pfix = min([1e-50] + finite)
    for r, beta in zip(loaded, betas):
        if source == "zscore":
            z = number(r["Z"])
        elif source in ("pvalue", "or_pvalue"):
            p = number(r["P"])
            z = -stats.norm.ppf((pfix if p == 0 else p) / 2) * np.sign(beta)
        else:
            z = beta / number(r["SE"])
        zs.append(float(np.float32(z)))
    rows = []
    for gene, name, n_model, r2, pval, _qval, phi in sorted(fx.extra):
        weights = {}
        for rsid, var, g, w, ref, eff in fx.weights[::-1]:  # the db holds them in this order; the last one wins
            if g == gene:
                weights[(rsid, var)[key_index]] = (w, ref, eff)
        if not weights:
            continue
        gwas = {}
        for snp, (_w, ref, eff) in weights.items():
            for r, z, beta in zip(loaded, zs, betas):
                a1, a2 = r["A1"].upper(), r["A2"].upper()
                if r[snp_column] != snp or {a1, a2} != {ref, eff} or not np.isfinite(z):
                    continue
                flip = -1.0 if a1 != eff else 1.0
                gwas[snp] = (z * flip, beta * flip)
        if not gwas:
            continue
        to_key = {w[0]: w[key_index] for w in fx.weights}
        cov = {}
        cov_snps = []
        gene_in_cov = False
        for g, a, b, v in fx.cov_rows:
            if g != gene:
                continue
            gene_in_cov = True
            if v is None:
                continue
            a, b = to_key.get(a, a), to_key.get(b, b)
            cov[(a, b)] = cov[(b, a)] = v
            if a not in cov_snps:
                cov_snps.append(a)
        used = [s for s in weights if s in gwas and s in cov_snps]
        z_g = effect = var_g = float("nan")
        if used:
            w = np.array([weights[s][0] for s in used])
            sigma = np.array([[cov[(a, b)] for b in used] for a in used])
            var_g = float(w @ sigma @ w)
            sd = np.sqrt(np.diag(sigma))
            if var_g > 0:
                z_g = float(np.sum(w * sd * np.array([gwas[s][0] for s in used])) / np.sqrt(var_g))
                effect = float(np.sum(w * sd**2 * np.array([gwas[s][1] for s in used])) / var_g)
        rows.append(dict(gene=gene, gene_name=name, zscore=z_g, effect_size=effect,
                         pvalue=2 * stats.norm.sf(abs(z_g)) if np.isfinite(z_g) else float("nan"), var_g=var_g,
                         pred_perf_r2=r2, pred_perf_pval=pval, pred_perf_qval=float("nan"), n_snps_used=len(used),
                         n_snps_in_cov=len(cov_snps) if gene_in_cov else float("nan"), n_snps_in_model=n_model,
                         phi=phi))
    table = pd.DataFrame(rows)
    if calibration:
        n, h2 = calibration
        table = table[table["phi"].notna()].copy()
        table["uncalibrated_pvalue"] = table["pvalue"]
        table["uncalibrated_zscore"] = table["zscore"]
        table["phi"] = table["phi"].clip(lower=0)
        table["zscore"] = table["zscore"] / np.sqrt(1 + table["phi"] * n * h2)
        table["pvalue"] = 2 * stats.norm.sf(np.abs(table["zscore"]))
    else:
        table = table.drop(columns="phi")
    return table


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same genes, same numbers (1e-6 relative), NA in the same places."""
    assert sorted(actual["gene"]) == sorted(expected["gene"])
    merged = actual.merge(expected, on="gene", suffixes=("", "_ref"))
    for column in expected.columns:
        if column == "gene":
            continue
        if column == "gene_name":
            assert (merged[column] == merged[f"{column}_ref"]).all()
            continue
        got = merged[column].to_numpy(dtype=float)
        want = merged[f"{column}_ref"].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(got), np.isnan(want)), column
        np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-6, atol=1e-300, err_msg=column)


def read_results(path: Path) -> pd.DataFrame:
    """A results CSV as written (NA as missing)."""
    return pd.read_csv(path, na_values=["NA"], keep_default_na=False)


# upper-case names: SPrediXcan.py would take a column literally named zscore/beta/se/pvalue as its own
COLUMN_SETS = {
    "zscore": dict(zscore="Z", beta="BETA"),
    "pvalue": dict(pvalue="P", beta="BETA"),
    "beta_se": dict(beta="BETA", se="SE"),
    "or_se": dict(odds_ratio="OR", se="SE"),
    "or_pvalue": dict(odds_ratio="OR", pvalue="P"),
}


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> Fixture:
    return build_fixture(tmp_path_factory.mktemp("twas"))


# ---------------------------------------------------------------------------------------------------------
# tests


@pytest.mark.parametrize("source", list(COLUMN_SETS))
def test_matches_plain_reference_for_every_z_source(fx, tmp_path, source):
    out = tmp_path / "out.csv"
    run_twas(fx.db, fx.covariance, [fx.gwas], GwasColumns(**COLUMN_SETS[source]), out)
    results = read_results(out)
    assert list(results.columns) == RESULT_COLUMNS
    expected = reference_twas(fx, source)
    assert_same(results, expected)
    # sorted by p-value, NA last
    p = results["pvalue"].to_numpy()
    finite = p[~np.isnan(p)]
    assert np.all(np.diff(finite) >= 0) and np.isnan(p[len(finite):]).all()
    # the fixture's cases really happened
    by_gene = results.set_index("gene")
    assert {"G04", "G07", "G08"}.isdisjoint(by_gene.index)  # no SNP in GWAS / not in extra / no weights
    assert by_gene.loc["G05", "n_snps_used"] == 0 and np.isnan(by_gene.loc["G05", "zscore"])  # not in covariance
    assert np.isnan(by_gene.loc["G05", "n_snps_in_cov"])
    assert by_gene.loc["G11", "var_g"] == 0 and np.isnan(by_gene.loc["G11", "zscore"])
    assert by_gene.loc["G02", "n_snps_used"] == 1  # one SNP allele-mismatched, one missing from the GWAS
    assert by_gene.loc["G03", "n_snps_used"] == 2 and by_gene.loc["G03", "n_snps_in_cov"] == 2
    assert by_gene.loc["G12", "n_snps_in_cov"] == 4  # the NA SNP does not count
    assert by_gene.loc["G13", "n_snps_used"] == 2  # esv40 dropped by the rs filter
    assert by_gene.loc["G15", "n_snps_in_cov"] == 4
    if source in ("pvalue", "or_pvalue"):
        assert np.isfinite(by_gene.loc["G14", "zscore"])  # p = 0 was fixed
    if source == "zscore":
        assert by_gene.loc["G15", "n_snps_used"] == 2


def test_sources_really_differ(fx, tmp_path):
    values = {}
    for source in ("zscore", "pvalue", "beta_se"):
        out = tmp_path / f"{source}.csv"
        run_twas(fx.db, fx.covariance, [fx.gwas], GwasColumns(**COLUMN_SETS[source]), out)
        values[source] = read_results(out).set_index("gene")["zscore"]
    assert not np.allclose(values["zscore"]["G01"], values["beta_se"]["G01"])
    assert not np.allclose(values["pvalue"]["G01"], values["beta_se"]["G01"])


def test_effect_size_is_na_without_beta(fx, tmp_path):
    out = tmp_path / "out.csv"
    run_twas(fx.db, fx.covariance, [fx.gwas], GwasColumns(zscore="Z"), out)
    results = read_results(out)
    assert results["effect_size"].isna().all()
    assert_same(results, reference_twas(fx, "zscore", beta_column=None))


def test_varid_keys_need_keep_non_rsid(fx, tmp_path):
    cov = varid_covariance(fx, tmp_path / "cov_varid.txt.gz")
    columns = GwasColumns(snp="variant_id", zscore="Z", beta="BETA")
    out = tmp_path / "dropped.csv"
    with pytest.raises(EnpactError, match=r"0 genes tested: none of the model's \d+ SNPs \(key varID.*ids without "
                                          r"'rs' are dropped unless --keep-non-rsid; --allow-empty"):
        run_twas(fx.db, cov, [fx.gwas], columns, out, snp_key="varID")
    assert not out.exists()
    run_twas(fx.db, cov, [fx.gwas], columns, out, snp_key="varID", allow_empty=True)
    assert out.read_text().strip() == ",".join(RESULT_COLUMNS)  # only the header, as SPrediXcan.py
    out = tmp_path / "kept.csv"
    run_twas(fx.db, cov, [fx.gwas], columns, out, snp_key="varID", keep_non_rsid=True)
    expected = reference_twas(fx, "zscore", key="varID", keep_non_rsid=True)
    assert_same(read_results(out), expected)
    assert read_results(out).set_index("gene").loc["G13", "n_snps_used"] == 3  # esv40's varID is kept


def test_keep_non_rsid_with_rsid_keys(fx, tmp_path):
    out = tmp_path / "out.csv"
    run_twas(fx.db, fx.covariance, [fx.gwas], GwasColumns(zscore="Z", beta="BETA"), out, keep_non_rsid=True)
    assert_same(read_results(out), reference_twas(fx, "zscore", keep_non_rsid=True))


def test_calibration_divides_z_by_sqrt_one_plus_phi_n_h2(fx, tmp_path):
    out = tmp_path / "out.csv"
    run_twas(fx.db, fx.covariance, [fx.gwas], GwasColumns(zscore="Z", beta="BETA"), out, gwas_h2=0.5,
             gwas_n=100_000)
    results = read_results(out)
    assert list(results.columns) == RESULT_COLUMNS + ["phi", "uncalibrated_pvalue", "uncalibrated_zscore"]
    assert "G03" not in set(results["gene"])  # NULL phi
    assert_same(results, reference_twas(fx, "zscore", calibration=(100_000, 0.5)))
    row = results.set_index("gene").loc["G05"]
    assert row["phi"] == 0  # negative phi taken as 0
    ratio = results["uncalibrated_zscore"] / results["zscore"]
    np.testing.assert_allclose(ratio.dropna(), np.sqrt(1 + results["phi"] * 1e5 * 0.5)[ratio.notna()], rtol=1e-12)


def test_whitespace_and_comma_gwas_give_the_same_results(fx, tmp_path):
    columns = GwasColumns(pvalue="P", beta="BETA")
    reference_out = tmp_path / "tab.csv"
    run_twas(fx.db, fx.covariance, [fx.gwas], columns, reference_out)
    plink = tmp_path / "plink.txt"
    header = list(fx.gwas_rows[0])
    lines = ["  ".join(f"{h:>12}" for h in header)]
    lines += ["  ".join(f"{r[h]:>12}" for h in header) for r in fx.gwas_rows]
    plink.write_text("\n".join(lines) + "\n")
    out = tmp_path / "plink.csv"
    run_twas(fx.db, fx.covariance, [plink], columns, out)
    comma = tmp_path / "gwas.csv"
    write_gwas(comma, fx.gwas_rows, separator=",")
    out2 = tmp_path / "comma.csv"
    run_twas(fx.db, fx.covariance, [comma], columns, out2, separator=",")
    expected = read_results(reference_out)
    for path in (out, out2):
        pd.testing.assert_frame_equal(read_results(path), expected)


def test_several_gwas_files_and_plots(fx, tmp_path):
    second = tmp_path / "second_study.tsv.gz"
    rows = [dict(r, Z=str(-number(r["Z"])) if r["Z"] != "NA" else "NA") for r in fx.gwas_rows]
    write_gwas(second, rows)
    outputs = run_twas(fx.db, fx.covariance, [fx.gwas, second], GwasColumns(zscore="Z"), tmp_path / "res",
                       plots_prefix=str(tmp_path / "plots" / "{gwas}"))
    assert outputs == [tmp_path / "res" / "gwas.csv", tmp_path / "res" / "second_study.csv"]
    first, flipped = (read_results(p).set_index("gene") for p in outputs)
    np.testing.assert_allclose(flipped.loc[first.index, "zscore"], -first["zscore"], rtol=1e-12)
    for name in ("gwas", "second_study"):
        for kind in ("qq", "manhattan"):
            png = tmp_path / "plots" / f"{name}.{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert output_paths(["a.txt.gz", "b.txt.gz"], "o/{gwas}.tsv") == [Path("o/a.tsv"), Path("o/b.tsv")]
    assert output_paths(["x/height.sumstats.tsv.gz"], tmp_path) == [tmp_path / "height.sumstats.csv"]
    assert output_paths(["x/height.txt"], tmp_path / "h.csv") == [tmp_path / "h.csv"]
    with pytest.raises(EnpactError, match=r"x/a\.txt\.gz and y/a\.tsv would both write twas/a\.csv"):
        output_paths(["x/a.txt.gz", "y/a.tsv"], "o")


def test_underscore_aliases_parse_like_hyphenated_options():
    parser = build_parser()
    common = ["--covariance", "c.txt.gz"]
    underscored = parser.parse_args([
        "twas", "--model_db_path", "m.db", *common, "--gwas_file", "g.txt.gz", "--snp_column", "S",
        "--effect_allele_column", "EA", "--non_effect_allele_column", "NEA", "--beta_column", "B", "--se_column", "SE",
        "--zscore_column", "Z", "--pvalue_column", "P", "--or_column", "OR", "--model_db_snp_key", "varID",
        "--keep_non_rsid", "--gwas_h2", "0.3", "--gwas_N", "5000", "--output_file", "o.csv", "--input_pvalue_fix", "0"])
    hyphenated = parser.parse_args([
        "twas", "--model-db-path", "m.db", *common, "--gwas-file", "g.txt.gz", "--snp-column", "S",
        "--effect-allele-column", "EA", "--non-effect-allele-column", "NEA", "--beta-column", "B", "--se-column", "SE",
        "--zscore-column", "Z", "--pvalue-column", "P", "--or-column", "OR", "--model-db-snp-key", "varID",
        "--keep-non-rsid", "--gwas-h2", "0.3", "--gwas-n", "5000", "--output-file", "o.csv", "--input-pvalue-fix", "0"])
    assert vars(underscored) == vars(hyphenated)
    assert underscored.gwas_n == 5000 and underscored.keep_non_rsid and underscored.input_pvalue_fix == 0


def run_cli(args: list[str], capsys) -> tuple[int, list[str]]:
    """Run `enpact twas ...` in process; return code and stderr lines."""
    capsys.readouterr()
    rc = main(["-q", "twas", *args])
    return rc, capsys.readouterr().err.strip().splitlines()


def test_cli_runs_and_user_errors_are_one_line(fx, tmp_path, capsys):
    out = tmp_path / "cli.csv"
    base = ["--model-db-path", str(fx.db), "--covariance", str(fx.covariance), "--output-file", str(out)]
    rc, _ = run_cli([*base, "--gwas-file", str(fx.gwas), "--zscore-column", "Z", "--beta-column", "BETA"], capsys)
    assert rc == 0
    assert_same(read_results(out), reference_twas(fx, "zscore"))

    rc, err = run_cli([*base, "--gwas-file", str(fx.gwas), "--zscore-column", "zscore"], capsys)
    assert rc == 1 and len(err) == 1 and "gwas.txt.gz" in err[0] and "'zscore'" in err[0]

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    rc, err = run_cli(["--model-db-path", str(junk), "--covariance", str(fx.covariance), "--output-file", str(out),
                       "--gwas-file", str(fx.gwas), "--zscore-column", "Z"], capsys)
    assert rc == 1 and len(err) == 1 and "junk.db" in err[0]

    bad_cov = tmp_path / "bad_cov.txt"
    lines = gzip.decompress(fx.covariance.read_bytes()).decode().splitlines()
    gene, a, b, _ = lines[5].split("\t")
    lines[5] = f"{gene}\t{a}\t{b}\tabc"
    bad_cov.write_text("\n".join(lines) + "\n")
    rc, err = run_cli(["--model-db-path", str(fx.db), "--covariance", str(bad_cov), "--output-file", str(out),
                       "--gwas-file", str(fx.gwas), "--zscore-column", "Z"], capsys)
    assert rc == 1 and len(err) == 1 and "bad_cov.txt" in err[0] and "'abc'" in err[0]

    split = tmp_path / "split_cov.txt"
    lines = gzip.decompress(fx.covariance.read_bytes()).decode().splitlines()
    split.write_text("\n".join([lines[0], *lines[2:], lines[1]]) + "\n")
    rc, err = run_cli(["--model-db-path", str(fx.db), "--covariance", str(split), "--output-file", str(out),
                       "--gwas-file", str(fx.gwas), "--zscore-column", "Z"], capsys)
    assert rc == 1 and len(err) == 1 and "G01" in err[0] and "contiguous" in err[0]

    rc, err = run_cli([*base, "--gwas-file", str(fx.gwas), "--zscore-column", "Z", "--gwas-h2", "0.5"], capsys)
    assert rc == 1 and len(err) == 1 and "--gwas-n" in err[0]

    rc, err = run_cli([*base, "--gwas-file", str(fx.gwas), "--pvalue-column", "P"], capsys)
    assert rc == 1 and len(err) == 1 and "--beta-column" in err[0]

    no_phi = tmp_path / "no_phi.db"
    with sqlite3.connect(fx.db) as source, sqlite3.connect(no_phi) as target:
        source.backup(target)
        target.execute("ALTER TABLE extra DROP COLUMN phi")
    rc, err = run_cli(["--model-db-path", str(no_phi), "--covariance", str(fx.covariance), "--output-file", str(out),
                       "--gwas-file", str(fx.gwas), "--zscore-column", "Z", "--gwas-h2", "0.5", "--gwas-n", "1e5"],
                      capsys)
    assert rc == 1 and len(err) == 1 and "no_phi.db" in err[0] and "phi" in err[0]

    bad_value = tmp_path / "bad_value.txt"
    rows = [dict(r) for r in fx.gwas_rows]
    rows[0]["Z"] = "1.2.3"
    write_gwas(bad_value, rows)
    rc, err = run_cli([*base, "--gwas-file", str(bad_value), "--zscore-column", "Z"], capsys)
    assert rc == 1 and len(err) == 1 and "'1.2.3'" in err[0] and rows[0]["SNP"] in err[0]


def test_missing_covariance_pair_is_an_error(fx, tmp_path):
    lines = gzip.decompress(fx.covariance.read_bytes()).decode().splitlines()
    broken = [line for line in lines if not (line.startswith("G01\t") and line.split("\t")[1] != line.split("\t")[2]
                                             and "rs1001" in line.split("\t")[1:3] and "rs1004" in line)]
    assert len(broken) == len(lines) - 1
    path = tmp_path / "cov_missing_pair.txt"
    path.write_text("\n".join(broken) + "\n")
    with pytest.raises(EnpactError, match="G01 has no covariance for SNP pair (rs1001,rs1004|rs1004,rs1001)"):
        run_twas(fx.db, path, [fx.gwas], GwasColumns(zscore="Z"), tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


# ---------------------------------------------------------------------------------------------------------
# optional: MetaXcan's own SPrediXcan.py (point ENPACT_SPREDIXCAN at it; ENPACT_SPREDIXCAN_PYTHON at a Python
# with numpy < 2.4 and pandas < 3)


@pytest.mark.skipif(not os.environ.get("ENPACT_SPREDIXCAN"), reason="ENPACT_SPREDIXCAN not set")
@pytest.mark.parametrize("source", ["zscore", "pvalue", "beta_se"])
def test_agrees_with_spredixcan(fx, tmp_path, source):
    python = os.environ.get("ENPACT_SPREDIXCAN_PYTHON", sys.executable)
    flags = {"zscore": ["--zscore_column", "Z", "--beta_column", "BETA"],
             "pvalue": ["--pvalue_column", "P", "--beta_column", "BETA"],
             "beta_se": ["--beta_column", "BETA", "--se_column", "SE"]}[source]
    theirs = tmp_path / "spredixcan.csv"
    subprocess.run([python, os.environ["ENPACT_SPREDIXCAN"], "--model_db_path", str(fx.db), "--covariance",
                    str(fx.covariance), "--gwas_file", str(fx.gwas), "--snp_column", "SNP", "--effect_allele_column",
                    "A1", "--non_effect_allele_column", "A2", *flags, "--output_file", str(theirs), "--throw"],
                   check=True, capture_output=True)
    ours = tmp_path / "enpact.csv"
    assert main(["twas", "--model_db_path", str(fx.db), "--covariance", str(fx.covariance), "--gwas_file",
                 str(fx.gwas), *flags, "--output_file", str(ours)]) == 0
    a, b = read_results(ours), read_results(theirs)
    assert list(a.columns) == list(b.columns)
    assert_same(a, b)


def test_covariance_variants_give_the_same_results(fx, tmp_path):
    """Runs of spaces, both triangles listed, and extra columns are read like the plain file; a repeated row is
    an error."""
    columns = GwasColumns(zscore="Z", beta="BETA")
    expected_path = tmp_path / "expected.csv"
    run_twas(fx.db, fx.covariance, [fx.gwas], columns, expected_path)
    expected = read_results(expected_path)
    lines = gzip.decompress(fx.covariance.read_bytes()).decode().splitlines()
    rows = [line.split("\t") for line in lines[1:]]
    spaced = tmp_path / "spaced.txt"
    spaced.write_text("\n".join("   ".join(r) for r in [lines[0].split("\t"), *rows]) + "\n")
    both = tmp_path / "both.txt.gz"
    mirrored = []
    for gene, a, b, v in rows:
        mirrored.append(f"{gene}\t{a}\t{b}\t{v}")
        if a != b:
            mirrored.append(f"{gene}\t{b}\t{a}\t{v}")
    both.write_bytes(gzip.compress(("\n".join([lines[0], *mirrored]) + "\n").encode()))
    wider = tmp_path / "wider.txt"
    wider.write_text("\n".join([lines[0] + "\tNOTE", *(line + "\tx" for line in lines[1:])]) + "\n")
    for path in (spaced, both, wider):
        out = tmp_path / f"{path.name}.csv"
        run_twas(fx.db, path, [fx.gwas], columns, out)
        pd.testing.assert_frame_equal(read_results(out), expected, check_exact=False, rtol=1e-12)
    repeated = tmp_path / "repeated.txt"
    repeated.write_text("\n".join([*lines[:4], lines[3], *lines[4:]]) + "\n")
    with pytest.raises(EnpactError, match="appears twice"):
        run_twas(fx.db, repeated, [fx.gwas], columns, tmp_path / "r.csv")


def test_pvalue_fix_zero_drops_zero_pvalues_and_sign_column_works(fx, tmp_path):
    out = tmp_path / "fix0.csv"
    run_twas(fx.db, fx.covariance, [fx.gwas], GwasColumns(pvalue="P", beta="BETA"), out, input_pvalue_fix=0)
    assert read_results(out).set_index("gene").loc["G14", "n_snps_used"] == 1  # rs1031 (p = 0) dropped
    rows = [dict(r, SIGN="NA" if r["BETA"] == "NA" else ("-" if r["BETA"].startswith("-") else "+"))
            for r in fx.gwas_rows]
    signed = tmp_path / "signed.txt"
    write_gwas(signed, rows)
    with_beta, with_sign = tmp_path / "beta.csv", tmp_path / "sign.csv"
    run_twas(fx.db, fx.covariance, [signed], GwasColumns(pvalue="P", beta="BETA"), with_beta)
    run_twas(fx.db, fx.covariance, [signed], GwasColumns(pvalue="P", beta_sign="SIGN"), with_sign)
    a, b = read_results(with_beta), read_results(with_sign)
    np.testing.assert_allclose(b["zscore"], a["zscore"], rtol=1e-12)
    assert b["effect_size"].isna().all()


def test_infinite_z_is_capped_at_the_largest_finite_and_missing_z_is_a_warning(fx, tmp_path, caplog):
    """Issue 24: an infinite z was dropped at INFO level and its gene's z changed silently."""
    rows = [dict(r) for r in fx.gwas_rows]
    finite = [float(r["Z"]) for r in rows if r["Z"] not in ("NA", "inf", "-inf")]
    strongest = max(range(len(rows)), key=lambda i: abs(float(rows[i]["Z"])) if rows[i]["Z"] != "NA" else -1)
    capped = [dict(r) for r in rows]
    rows[strongest]["Z"] = "-inf" if float(rows[strongest]["Z"]) < 0 else "inf"
    infinite, reference = tmp_path / "inf.txt", tmp_path / "ref.txt"
    write_gwas(infinite, rows)
    write_gwas(reference, capped)   # the strongest z is the largest finite |z|: capping gives it back
    assert abs(float(capped[strongest]["Z"])) == max(abs(v) for v in finite)
    columns = GwasColumns(zscore="Z", beta="BETA")
    with caplog.at_level("WARNING"):
        run_twas(fx.db, fx.covariance, [infinite], columns, tmp_path / "a.csv")
    run_twas(fx.db, fx.covariance, [reference], columns, tmp_path / "b.csv")
    pd.testing.assert_frame_equal(read_results(tmp_path / "a.csv"), read_results(tmp_path / "b.csv"))
    assert "1 GWAS z-scores of model SNPs are infinite" in caplog.text
    rows[strongest]["Z"] = "NA"
    write_gwas(infinite, rows)
    caplog.clear()
    with caplog.at_level("WARNING"):
        run_twas(fx.db, fx.covariance, [infinite], columns, tmp_path / "c.csv")
    assert "rows of model SNPs have no usable z-score" in caplog.text


@pytest.mark.parametrize("bad", ["1.5", "-0.2"])
def test_pvalues_outside_zero_one_are_refused_with_count_and_example(fx, tmp_path, bad):
    """A p-value of 1.5 would give a small z of the wrong sign (issue 24): refused, naming a row."""
    rows = [dict(r) for r in fx.gwas_rows]
    changed = [i for i, r in enumerate(rows) if r["P"] not in ("NA", "0")][:2]
    for i in changed:
        rows[i]["P"] = bad
    gwas = tmp_path / "bad.txt"
    write_gwas(gwas, rows)
    with pytest.raises(EnpactError, match=rf"2 rows have a p-value outside \[0, 1\] in column 'P' "
                                          rf"\(e\.g\. {rows[changed[0]]['SNP']}: {bad}\)"):
        run_twas(fx.db, fx.covariance, [gwas], GwasColumns(pvalue="P", beta="BETA"), tmp_path / "out.csv")


def test_plots_show_every_gene_and_the_bonferroni_line(tmp_path):
    from enpact.plots_twas import manhattan_plot, qq_plot

    rng = np.random.default_rng(3)
    p = rng.uniform(size=300)
    p[:3] = [1e-30, 1e-12, 0.0]
    chroms = np.array([f"chr{c}" for c in rng.integers(1, 23, 300)], dtype=object)
    labels = [f"g{i}" for i in range(300)]
    figure = manhattan_plot(chroms, rng.uniform(1, 1e8, 300), p, tmp_path / "m.png", labels=labels)
    axes = figure.axes[0]
    line = [ln for ln in axes.get_lines() if ln.get_linestyle() == "--"][0]
    assert line.get_ydata()[0] == pytest.approx(-np.log10(0.05 / 300))
    assert axes.get_ylim()[1] > 30  # the strongest gene is inside the axes
    assert {t.get_text() for t in axes.texts} >= {"g0", "g1"}
    assert [t.get_text() for t in axes.get_xticklabels()][:3] == ["chr1", "chr2", "chr3"]
    figure = qq_plot(p, tmp_path / "q.png")
    assert figure.axes[0].get_ylim()[1] > 30
    assert (tmp_path / "m.png").stat().st_size > 10_000 and (tmp_path / "q.png").stat().st_size > 10_000


def test_pair_listed_twice_keeps_its_last_row():
    from enpact.twas import _last_of_each_pair
    assert _last_of_each_pair(np.array([1, 4, 9])) is None
    assert _last_of_each_pair(np.array([9, 1, 4])) is None
    assert _last_of_each_pair(np.array([3, 1, 3, 2])).tolist() == [1, 2, 3]
