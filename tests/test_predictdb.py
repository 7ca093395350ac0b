"""PredictDB writer: linearization chunks, database schema, filtering, covariance layout, determinism, atomicity."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from enpact import predictdb
from enpact.cli import main
from enpact.errors import EnpactError
from enpact.predictdb import SUMMARY_COLUMNS, build_database, read_linearized_chunk, write_linearized_chunk

N_SAMPLES = 40

# gene, n SNPs (incl. one zero weight when > 2), status, zscore_pval, rho_avg
LOCI_A = [
    ("ENSG03", 4, "ok", 0.001, 0.50),   # kept
    ("ENSG01", 3, "ok", 0.20, 0.50),    # fails p-value
    ("ENSG05", 2, "ok", 0.01, 0.05),    # fails rho
    ("ENSG07", 0, "ok", 0.001, 0.60),   # fitted, no SNP selected
]
LOCI_B = [
    ("ENSG02", 5, "ok", 0.049, 0.11),   # kept, near both thresholds
    ("ENSG04", 0, "skipped", np.nan, np.nan),
    ("ENSG06", 4, "ok", 0.0001, 0.90),  # kept; one SNP without rsid
]


def synthetic_chunk(loci, seed: int, chrom: str = "chr1"):
    """Summary, weights and covariances for some loci, plus the dosages the covariances come from."""
    rng = np.random.default_rng(seed)
    summary, weights, covariances, dosages = [], [], {}, {}
    for index, (gene, n_snps, status, pval, rho) in enumerate(loci):
        row = {c: np.nan for c in SUMMARY_COLUMNS}
        row.update(gene=gene, genename=f"NAME{gene[-2:]}", gene_type="protein_coding", n_samples=N_SAMPLES,
                   n_snps_in_window=n_snps + 7, n_snps_in_model=n_snps, status=status,
                   reason="" if status == "ok" else "too_few_snps")
        if status == "ok":
            row.update(alpha=0.5, lambda_min=0.01 * (index + 1), cv_mse=0.9, cv_R2_avg=rho**2 - 0.01, cv_R2_sd=0.02,
                       rho_avg=rho, rho_se=0.03, rho_zscore=3.0, rho_avg_squared=rho**2, zscore_pval=pval,
                       cv_fisher_pval=pval / 2, in_sample_R2=rho**2 + 0.05)
        summary.append(row)
        if status != "ok" or n_snps == 0:
            continue
        positions = 1000 * (int(gene[-2:]) * 100) + np.sort(rng.choice(5000, n_snps, replace=False))
        refs = rng.choice(list("ACGT"), n_snps)
        alts = np.array([next(b for b in "ACGT" if b != r) for r in refs])
        var_ids = [f"{chrom}_{p}_{r}_{a}_b38" for p, r, a in zip(positions, refs, alts)]
        rsids = [f"rs{p}" for p in positions]
        if gene == "ENSG06":
            rsids[1] = "."
        w = rng.normal(0, 0.3, n_snps)
        if n_snps > 2:
            w[-1] = 0.0  # the chunk writer drops zero weights
        dose = rng.binomial(2, 0.3, size=(N_SAMPLES, n_snps)).astype(float)
        dosages[gene] = (var_ids, dose)
        covariances[gene] = np.cov(dose, rowvar=False, ddof=1)
        for v, rs, r, a, wt in zip(var_ids, rsids, refs, alts, w):
            weights.append(dict(gene=gene, rsid=rs, varID=v, ref_allele=r, eff_allele=a, weight=wt))
    return pd.DataFrame(summary), pd.DataFrame(weights), covariances, dosages


@pytest.fixture()
def chunks(tmp_path):
    """Two chunk files written by the chunk writer, and the dosages behind them."""
    paths, dosages = [], {}
    for name, loci, seed in (("a", LOCI_A, 1), ("b", LOCI_B, 2)):
        summary, weights, covariances, dose = synthetic_chunk(loci, seed)
        path = tmp_path / "lin" / f"chunk_{name}.h5"
        path.parent.mkdir(exist_ok=True)
        write_linearized_chunk(path, summary, weights, covariances)
        paths.append(str(path))
        dosages.update(dose)
    return paths, dosages


def read_cov(path: Path) -> pd.DataFrame:
    """The covariance file as a table (text ids, float values)."""
    with gzip.open(path, "rt") as handle:
        header = handle.readline().split()
    assert header == ["GENE", "RSID1", "RSID2", "VALUE"]
    return pd.read_csv(path, sep=" ", dtype={"GENE": str, "RSID1": str, "RSID2": str}, keep_default_na=False)


def db_rows(path: Path, query: str) -> list[tuple]:
    """Run a query on a database."""
    with sqlite3.connect(path) as connection:
        return connection.execute(query).fetchall()


def test_chunk_files_drop_zero_weights_and_hold_upper_triangle_covariance(chunks):
    prefixes, dosages = chunks
    chunk = read_linearized_chunk(prefixes[0])
    weights = chunk.weights
    assert (weights["weight"] != 0).all()
    assert sorted(weights["gene"].unique()) == ["ENSG01", "ENSG03", "ENSG05"]
    n_model = chunk.summary.set_index("gene")["n_snps_in_model"]
    assert n_model["ENSG03"] == 3 and n_model["ENSG01"] == 2 and n_model["ENSG05"] == 2 and n_model["ENSG07"] == 0
    var_id = weights["varID"].to_numpy(dtype=object)
    first, second = chunk.covariance["first"].to_numpy(), chunk.covariance["second"].to_numpy()
    cov = pd.DataFrame({"GENE": weights["gene"].to_numpy(dtype=object)[first], "RSID1": var_id[first],
                        "RSID2": var_id[second], "VALUE": chunk.covariance["VALUE"].to_numpy()})
    for gene, rows in weights.groupby("gene", sort=False):
        var_ids, dose = dosages[gene]
        order = list(rows["varID"])
        position = {v: i for i, v in enumerate(order)}
        block = cov[cov["GENE"] == gene]
        i = block["RSID1"].map(position).to_numpy()
        j = block["RSID2"].map(position).to_numpy()
        assert list(zip(i, j)) == [(a, b) for a in range(len(order)) for b in range(a, len(order))]
        full = pd.DataFrame(dose, columns=var_ids)
        expected = [np.cov(full[a], full[b], ddof=1)[0, 1] for a, b in zip(block["RSID1"], block["RSID2"])]
        np.testing.assert_allclose(block["VALUE"].to_numpy(), expected, rtol=1e-12)


def test_database_schema_and_indexes(chunks, tmp_path):
    prefixes, _ = chunks
    out = build_database(prefixes, "tissue", tmp_path / "db", population="EUR", cv_seed=17)
    columns = {t: [(r[1], r[2]) for r in db_rows(out.db, f"PRAGMA table_info({t})")]
               for t in ("weights", "extra", "sample_info", "construction")}
    assert columns["weights"] == [("gene", "TEXT"), ("rsid", "TEXT"), ("varID", "TEXT"), ("ref_allele", "CHARACTER"),
                                  ("eff_allele", "CHARACTER"), ("weight", "DOUBLE")]
    assert [c for c, _ in columns["extra"]] == [
        "gene", "genename", "gene_type", "alpha", "n_snps_in_window", "n.snps.in.model", "lambda_min", "cv_R2_avg",
        "cv_R2_sd", "in_sample_R2", "rho_avg", "rho_se", "rho_zscore", "zscore_pval", "cv_fisher_pval",
        "pred.perf.R2", "pred.perf.pval", "pred.perf.qval"]
    types = dict(columns["extra"])
    assert types["n.snps.in.model"] == "INTEGER" and types["pred.perf.R2"] == "DOUBLE"
    assert columns["sample_info"] == [("n_samples", "INTEGER"), ("population", "TEXT")]
    assert columns["construction"] == [("chromosome", "TEXT"), ("cv_seed", "INTEGER")]
    indexes = {}
    for (name,) in db_rows(out.db, "SELECT name FROM sqlite_master WHERE type = 'index'"):
        table = db_rows(out.db, f"SELECT tbl_name FROM sqlite_master WHERE name = '{name}'")[0][0]
        indexes[(table, tuple(r[2] for r in db_rows(out.db, f"PRAGMA index_info({name})")))] = name
    for key in [("weights", ("gene",)), ("weights", ("rsid",)), ("weights", ("varID",)), ("weights", ("rsid", "gene")),
                ("extra", ("gene",))]:
        assert key in indexes
    assert db_rows(out.db, "SELECT * FROM sample_info") == [(N_SAMPLES, "EUR")]
    assert db_rows(out.db, "SELECT * FROM construction") == [("chr1", 17)]
    # the two queries SPrediXcan.py runs
    assert db_rows(out.db, "SELECT rsid, gene, weight, ref_allele, eff_allele FROM weights")
    assert db_rows(out.db, "SELECT gene, genename, `n.snps.in.model`, `pred.perf.R2`, `pred.perf.pval`, "
                           "`pred.perf.qval` FROM extra order by gene")


def test_filtering_and_pred_perf_columns(chunks, tmp_path):
    prefixes, _ = chunks
    out = build_database(prefixes, "tissue", tmp_path / "db", keep_unfiltered=True)
    extra = db_rows(out.db, 'SELECT gene, "pred.perf.R2", "pred.perf.pval", "pred.perf.qval", rho_avg, zscore_pval, '
                            '"n.snps.in.model" FROM extra ORDER BY rowid')
    assert [r[0] for r in extra] == ["ENSG02", "ENSG03", "ENSG06"]
    for _gene, r2, pval, qval, rho, zp, _n in extra:
        assert r2 == pytest.approx(rho**2, rel=1e-12) and pval == zp and qval is None
    assert {r[0]: r[6] for r in extra} == {"ENSG02": 4, "ENSG03": 3, "ENSG06": 3}
    unfiltered = [r[0] for r in db_rows(out.unfiltered_db, "SELECT gene FROM extra ORDER BY rowid")]
    assert unfiltered == ["ENSG01", "ENSG02", "ENSG03", "ENSG05", "ENSG06", "ENSG07"]
    assert db_rows(out.unfiltered_db, "SELECT count(*) FROM weights WHERE gene = 'ENSG07'") == [(0,)]
    summary = pd.read_csv(out.summary, sep="\t")
    assert list(summary["gene"]) == [f"ENSG0{i}" for i in range(1, 8)]
    assert dict(zip(summary["gene"], summary["kept"])) == {
        "ENSG01": False, "ENSG02": True, "ENSG03": True, "ENSG04": False, "ENSG05": False, "ENSG06": True,
        "ENSG07": False}
    stricter = build_database(prefixes, "strict", tmp_path / "db", pval_threshold=0.01, rho_threshold=0.2)
    assert [r[0] for r in db_rows(stricter.db, "SELECT gene FROM extra")] == ["ENSG03", "ENSG06"]


@pytest.mark.parametrize("snp_key", ["varID", "rsid"])
def test_covariance_file_layout_matches_database(chunks, tmp_path, snp_key):
    prefixes, dosages = chunks
    out = build_database(prefixes, "tissue", tmp_path / "db", snp_key=snp_key, keep_unfiltered=True)
    for db, cov_path in ((out.db, out.covariance), (out.unfiltered_db, out.unfiltered_covariance)):
        cov = read_cov(cov_path)
        genes_in_extra = [r[0] for r in db_rows(db, "SELECT gene FROM extra ORDER BY gene")]
        with_weights = [g for g in genes_in_extra
                        if db_rows(db, f"SELECT count(*) FROM weights WHERE gene='{g}'")[0][0]]
        runs = cov["GENE"][cov["GENE"] != cov["GENE"].shift()].tolist()
        assert runs == with_weights  # contiguous, in extra order, only the db's genes
        for gene in with_weights:
            rows = db_rows(db, f"SELECT {snp_key}, varID, rsid FROM weights WHERE gene = '{gene}' ORDER BY rowid")
            keys = [r[0] for r in rows]
            position = {k: i for i, k in enumerate(keys)}
            block = cov[cov["GENE"] == gene]
            pairs = list(zip(block["RSID1"].map(position), block["RSID2"].map(position)))
            assert pairs == [(a, b) for a in range(len(keys)) for b in range(a, len(keys))]
            var_ids, dose = dosages[gene]
            column = {v: dose[:, i] for i, v in enumerate(var_ids)}
            by_key = {r[0]: r[1] for r in rows}
            expected = [np.cov(column[by_key[a]], column[by_key[b]], ddof=1)[0, 1]
                        for a, b in zip(block["RSID1"], block["RSID2"])]
            np.testing.assert_allclose(block["VALUE"].to_numpy(), expected, rtol=1e-12)
    rsids = dict(db_rows(out.db, "SELECT varID, rsid FROM weights WHERE gene = 'ENSG06'"))
    if snp_key == "rsid":
        assert len(rsids) == 2 and "." not in rsids.values()
        assert db_rows(out.db, "SELECT \"n.snps.in.model\" FROM extra WHERE gene='ENSG06'") == [(2,)]
    else:
        assert len(rsids) == 3
        no_rsid = [v for v, r in rsids.items() if not r.startswith("rs")]
        assert len(no_rsid) == 1 and rsids[no_rsid[0]] == no_rsid[0]  # rsid column falls back to the varID


def test_outputs_are_byte_identical_whatever_the_chunk_order(chunks, tmp_path):
    prefixes, _ = chunks
    first = build_database(prefixes, "t", tmp_path / "one", keep_unfiltered=True, cv_seed=3)
    second = build_database(prefixes[::-1], "t", tmp_path / "two", keep_unfiltered=True, cv_seed=3)
    for a, b in zip(sorted((tmp_path / "one").iterdir()), sorted((tmp_path / "two").iterdir())):
        assert a.name == b.name
        assert a.read_bytes() == b.read_bytes(), a.name
    assert len(list((tmp_path / "one").iterdir())) == 5
    assert first.covariance.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert second.db.stat().st_mode & 0o777 != 0o600


def test_directory_input_and_duplicate_gene_error(chunks, tmp_path):
    prefixes, _ = chunks
    out = build_database([Path(prefixes[0]).parent], "dir", tmp_path / "db")
    assert len(db_rows(out.db, "SELECT gene FROM extra")) == 3
    with pytest.raises(EnpactError, match="ENSG03 is also in"):
        build_database([prefixes[0], prefixes[1], prefixes[0]], "dup", tmp_path / "dup")


def test_a_file_that_is_not_a_chunk_is_an_error_and_leaves_no_output(chunks, tmp_path):
    prefixes, _ = chunks
    other = tmp_path / "other.h5"
    other.write_text("summary\tweights\n")
    out = tmp_path / "db"
    with pytest.raises(EnpactError, match=r"other\.h5: not a readable HDF5"):
        build_database([*prefixes, other], "broken", out)
    assert not out.exists() or list(out.iterdir()) == []


def test_the_chunk_writer_refuses_ids_with_whitespace(tmp_path):
    summary, weights, covariances, _ = synthetic_chunk(LOCI_A, 1)
    weights.loc[0, "varID"] = "chr1 123 A C"
    with pytest.raises(EnpactError, match=r"varID 'chr1 123 A C' is empty or contains whitespace"):
        write_linearized_chunk(tmp_path / "c.h5", summary, weights, covariances)
    assert not (tmp_path / "c.h5").exists()


def test_chunks_are_read_back_exactly(chunks):
    """The binary chunk holds the fitted values bit for bit (no text round trip)."""
    summary, weights, covariances, _ = synthetic_chunk(LOCI_A, 1)
    chunk = read_linearized_chunk(chunks[0][0])
    expected = summary.set_index("gene").loc[chunk.summary["gene"]]
    for column in ("rho_avg", "zscore_pval", "lambda_min", "cv_R2_avg"):
        np.testing.assert_array_equal(chunk.summary[column].to_numpy(), expected[column].to_numpy())
    kept = weights[weights["weight"] != 0].reset_index(drop=True)
    np.testing.assert_array_equal(chunk.weights["weight"].to_numpy(), kept["weight"].to_numpy())
    assert chunk.summary["reason"].tolist() == summary["reason"].tolist()


def test_failure_while_writing_removes_every_output(chunks, tmp_path, monkeypatch):
    prefixes, _ = chunks
    calls = []

    def failing_covariance(path, covariance):
        calls.append(path)
        if len(calls) == 2:  # the unfiltered covariance, after the filtered db and covariance exist
            raise OSError("disk full")
        original(path, covariance)

    original = predictdb.write_covariance
    monkeypatch.setattr(predictdb, "write_covariance", failing_covariance)
    out = tmp_path / "db"
    with pytest.raises(OSError):
        build_database(prefixes, "t", out, keep_unfiltered=True)
    assert list(out.iterdir()) == []


def test_database_cli(chunks, tmp_path, capsys):
    prefixes, _ = chunks
    rc = main(["database", "--linearized", *prefixes, "--name", "cli", "--outdir", str(tmp_path / "o"),
               "--snp-key", "rsid", "--keep-unfiltered", "--population", "AFR", "--cv-seed", "5"])
    assert rc == 0
    assert {p.name for p in (tmp_path / "o").iterdir()} == {
        "cli.db", "cli.txt.gz", "cli.summary.tsv", "cli.unfiltered.db", "cli.unfiltered.txt.gz"}
    assert db_rows(tmp_path / "o" / "cli.db", "SELECT * FROM sample_info") == [(N_SAMPLES, "AFR")]
    capsys.readouterr()
    rc = main(["database", "--linearized", str(tmp_path / "missing.h5"), "--name", "x", "--outdir",
               str(tmp_path / "o2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "missing.h5: file not found" in err[0]


def test_a_store_of_another_kind_is_named(chunks, tmp_path):
    from enpact.store import PersonalizedStore, write_personalized_store

    prefixes, _ = chunks
    store = tmp_path / "personalized.h5"
    write_personalized_store(store, PersonalizedStore(["G"], ["S"], np.zeros((1, 1, 2), np.float32),
                                                      np.zeros(1, np.float32)))
    with pytest.raises(EnpactError, match=r"personalized\.h5: expected a linearized store, found 'personalized'"):
        build_database([prefixes[0], store], "t", tmp_path / "db")


def test_no_model_passing_the_filters_is_an_error_with_the_numbers(chunks, tmp_path):
    prefixes, _ = chunks
    out = tmp_path / "db"
    with pytest.raises(EnpactError, match=r"no model passed the filters: of \d+ fitted loci, \d+ have zscore_pval < "
                                          r"0.05 \(smallest [0-9.e-]+\), 0 rho_avg > 1\.5.*relax the filters \(raise "
                                          r"--pval-threshold, lower --rho-threshold\).*--allow-empty"):
        build_database(prefixes, "t", out, rho_threshold=1.5)
    from enpact.checks import param_names   # what `enpact run` says: the parameters to change

    assert param_names("raise --pval-threshold, lower --rho-threshold", "database") == \
        "raise db_pval_threshold, lower db_rho_threshold"
    assert not out.exists() or list(out.iterdir()) == []
    outputs = build_database(prefixes, "t", out, rho_threshold=1.5, allow_empty=True)
    assert outputs.n_genes == 0 and db_rows(outputs.db, "SELECT COUNT(*) FROM extra") == [(0,)]
