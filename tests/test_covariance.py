"""`enpact covariance`: the SNP covariance of model SNPs from a reference panel, against the database step's own
covariance file and against dosages read independently with bcftools."""

from __future__ import annotations

import gzip
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import bcftools_mean_imputed_dosages, write_vcf
from enpact.cli import main
from enpact.errors import EnpactError
from enpact.panel_covariance import write_panel_covariance
from enpact.store import PersonalizedStore, write_personalized_store

N_SAMPLES = 150
WINDOW = 2000
CHROM_LENGTH = 20_000
CENTERS = {"GA": 3000, "GB": 3800, "GC": 9000}  # GA and GB windows overlap, so they share SNPs
CONTEXT_SEEDS = {"ctxA": 11, "ctxB": 12, "ctxC": 13}


@dataclass
class Study:
    """A VCF, its linearization samples and one database (varID and rsid keyed) per context, built by
    `enpact linearize` and `enpact database`."""

    root: Path
    vcf: Path
    samples: list[str]
    samples_file: Path
    records: list[list[str]]  # the VCF's data lines, split on tabs
    header_samples: list[str]
    dbs: dict[str, Path]  # context -> varID-keyed database (its covariance beside it: .txt.gz)
    rsid_dbs: dict[str, Path]


def _records(rng: np.random.Generator, samples: list[str]) -> list[list[str]]:
    """Biallelic SNVs around the loci (two without rsid), haplotype alleles with varied frequencies."""
    positions = sorted(rng.choice(np.arange(1500, 10_500), 60, replace=False).tolist())
    records = []
    for i, pos in enumerate(positions):
        ref = "ACGT"[rng.integers(4)]
        alt = [b for b in "ACGT" if b != ref and {b, ref} not in ({"A", "T"}, {"C", "G"})][rng.integers(2)]
        haps = (rng.random((len(samples), 2)) < rng.uniform(0.1, 0.5)).astype(int)
        ident = "." if i in (5, 40) else f"rs{pos}"
        records.append(["chr7", str(pos + 1), ident, ref, alt, ".", "PASS", ".", "GT",
                        *[f"{a}|{b}" for a, b in haps]])
    return records


def write_records(path: Path, samples: list[str], records: list[list[str]]) -> Path:
    """A bgzipped, indexed VCF of these data lines."""
    return write_vcf(path, {"chr7": CHROM_LENGTH}, samples, ["\t".join(r) for r in records])


def _store(path: Path, samples: list[str], records: list[list[str]], seed: int) -> Path:
    """Personalized values linear in a few SNVs of each locus's window, plus noise."""
    rng = np.random.default_rng(seed)
    positions = np.array([int(r[1]) - 1 for r in records])
    haplotypes = np.array([[[int(a) for a in gt.split("|")] for gt in r[9:]] for r in records], dtype=float)
    prediction = np.zeros((len(CENTERS), len(samples), 2), np.float32)
    for g, center in enumerate(CENTERS.values()):
        inside = np.flatnonzero(np.abs(positions - center) < WINDOW // 2 - 10)
        causal = rng.choice(inside, 4, replace=False)
        weights = rng.normal(0, 1, 4)
        prediction[g] = np.einsum("k,ksh->sh", weights, haplotypes[causal]) + rng.normal(0, 0.3, (len(samples), 2))
    store = PersonalizedStore(list(CENTERS), samples, prediction, np.zeros(len(CENTERS), np.float32),
                              {"predictor": {"window_bp": WINDOW}})
    write_personalized_store(path, store)
    return path


def build_study(root: Path, contexts: dict[str, int] = CONTEXT_SEEDS) -> Study:
    """The VCF (more individuals than are linearized), and per context a store, a linearization chunk and
    databases keyed by varID and by rsid."""
    rng = np.random.default_rng(3)
    header_samples = [f"S{i:03d}" for i in range(N_SAMPLES + 20)]
    records = _records(rng, header_samples)
    vcf = write_records(root / "panel.vcf", header_samples, records)
    samples = header_samples[10:10 + N_SAMPLES]
    samples_file = root / "samples.txt"
    samples_file.write_text("\n".join(samples) + "\n")
    linearized_records = [r[:9] + [r[9 + header_samples.index(s)] for s in samples] for r in records]
    pd.DataFrame({"locus_id": list(CENTERS), "chrom": "chr7", "center": list(CENTERS.values()),
                  "name": [f"NAME_{g}" for g in CENTERS], "split": "train"}).to_csv(root / "loci.tsv", sep="\t",
                                                                                  index=False)
    dbs, rsid_dbs = {}, {}
    for context, seed in contexts.items():
        store = _store(root / f"{context}.h5", samples, linearized_records, seed)
        # rsid-keyed databases are linearized on SNPs with an rsid only, as `enpact run` does (--require-rsid)
        for key, target, name, flags in (("varID", dbs, context, []),
                                         ("rsid", rsid_dbs, f"{context}_rsid", ["--require-rsid"])):
            chunk = root / f"{name}.lin.h5"
            assert main(["-q", "linearize", "--personalized", str(store), "--vcf", str(vcf), "--loci",
                         str(root / "loci.tsv"), "--folds", "5", "--no-progress", *flags, "--out", str(chunk)]) == 0
            assert main(["-q", "database", "--linearized", str(chunk), "--name", name, "--outdir", str(root / "db"),
                         "--snp-key", key, "--pval-threshold", "0.5", "--rho-threshold", "0"]) == 0
            target[context] = root / "db" / f"{name}.db"
    return Study(root, vcf, samples, samples_file, records, header_samples, dbs, rsid_dbs)


def covariance_of(db: Path) -> Path:
    """The covariance file the database step wrote beside a database."""
    return db.with_suffix(".txt.gz")


def read_cov(path: Path) -> pd.DataFrame:
    """A covariance file as a table."""
    return pd.read_csv(path, sep=" ", dtype={"GENE": str, "RSID1": str, "RSID2": str}, keep_default_na=False)


def db_weights(db: Path) -> pd.DataFrame:
    """A database's weights table in row order."""
    with sqlite3.connect(db) as connection:
        return pd.read_sql("SELECT gene, rsid, varID, ref_allele, eff_allele, weight FROM weights ORDER BY rowid",
                           connection)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Study:
    return build_study(tmp_path_factory.mktemp("covariance"))


# ---------------------------------------------------------------------------------------------------------
# the database step's own covariance, byte for byte


@pytest.mark.parametrize("key", ["varID", "rsid"])
def test_one_database_and_the_linearization_panel_give_the_database_steps_file(study, tmp_path, key):
    dbs = study.dbs if key == "varID" else study.rsid_dbs
    for context, db in dbs.items():
        out = tmp_path / f"{context}.txt.gz"
        assert main(["-q", "covariance", "--model-db-path", str(db), "--vcf", str(study.vcf), "--samples-file",
                     str(study.samples_file), "--snp-key", key, "--out", str(out)]) == 0
        assert out.read_bytes() == covariance_of(db).read_bytes(), context
    # the fixture has what the comparison needs: SNPs shared by two genes, several SNPs per gene
    cov = read_cov(covariance_of(study.dbs["ctxA"]))
    per_gene = cov[cov["RSID1"] == cov["RSID2"]].groupby("GENE")["RSID1"].apply(set)
    assert per_gene.map(len).min() >= 2
    assert len(per_gene) == 3 and per_gene["GA"] & per_gene["GB"]


def test_rsid_database_from_a_fit_that_used_snps_without_rsid_agrees_to_rounding(study, tmp_path):
    """Linearized without --require-rsid, a fit may use a SNP without rsid that the rsid-keyed database then drops:
    the database step's values come from the covariance of the larger matrix, which BLAS may sum in another order, so
    they agree to rounding rather than bit for bit."""
    chunk = study.root / "ctxA.lin.h5"  # the varID linearization: SNPs without rsid were fitted
    assert main(["-q", "database", "--linearized", str(chunk), "--name", "all_fitted", "--outdir", str(tmp_path),
                 "--snp-key", "rsid", "--pval-threshold", "0.5", "--rho-threshold", "0"]) == 0
    out = tmp_path / "cov.txt.gz"
    write_panel_covariance([tmp_path / "all_fitted.db"], study.vcf, out, "rsid", study.samples)
    got, expected = read_cov(out), read_cov(tmp_path / "all_fitted.txt.gz")
    assert got[["GENE", "RSID1", "RSID2"]].equals(expected[["GENE", "RSID1", "RSID2"]])
    np.testing.assert_allclose(got["VALUE"], expected["VALUE"], rtol=1e-12, atol=1e-15)


def test_all_individuals_by_default_and_samples_option(study, tmp_path):
    listed = tmp_path / "listed.txt.gz"
    assert main(["-q", "covariance", "--model-db-path", str(study.dbs["ctxA"]), "--vcf", str(study.vcf),
                 "--samples", ",".join(study.samples), "--out", str(listed)]) == 0
    assert listed.read_bytes() == covariance_of(study.dbs["ctxA"]).read_bytes()
    everyone = tmp_path / "everyone.txt.gz"
    assert main(["-q", "covariance", "--model-db-path", str(study.dbs["ctxA"]), "--vcf", str(study.vcf),
                 "--out", str(everyone)]) == 0
    a, b = read_cov(listed), read_cov(everyone)
    assert a[["GENE", "RSID1", "RSID2"]].equals(b[["GENE", "RSID1", "RSID2"]])
    assert not np.allclose(a["VALUE"], b["VALUE"])


# ---------------------------------------------------------------------------------------------------------
# panels that differ from the model: swapped alleles, missing SNPs


def test_a_panel_with_ref_and_alt_swapped_gives_the_same_covariance(study, tmp_path, caplog):
    model_ids = set(db_weights(study.dbs["ctxA"])["varID"])
    swapped, n_swapped = [], 0
    for record in study.records:
        var_id = f"chr7_{record[1]}_{record[3]}_{record[4]}_b38"
        if var_id in model_ids and n_swapped % 2 == 0:  # every other model SNP
            flip = {"0": "1", "1": "0"}
            record = record[:3] + [record[4], record[3]] + record[5:9] + [
                "|".join(flip[a] for a in gt.split("|")) for gt in record[9:]]
        n_swapped += var_id in model_ids
        swapped.append(record)
    panel = write_records(tmp_path / "swapped.vcf", study.header_samples, swapped)
    out = tmp_path / "cov.txt.gz"
    with caplog.at_level("INFO"):
        write_panel_covariance([study.dbs["ctxA"]], panel, out, "varID", study.samples)
    assert out.read_bytes() == covariance_of(study.dbs["ctxA"]).read_bytes()
    assert f"({(len(model_ids) + 1) // 2} with REF/ALT swapped" in caplog.text


@pytest.mark.skipif(shutil.which("bcftools") is None, reason="bcftools not installed")
def test_missing_calls_are_mean_imputed_and_poorly_called_snps_left_out(study, tmp_path, caplog):
    """A panel with 4% of calls missing, and 20% at every fourth model SNP: the covariance is that of dosages with
    each missing genotype given its site's mean (read independently with bcftools and pandas), and SNPs above the
    10% default are left out of their genes' covariance, with a warning."""
    rng = np.random.default_rng(9)
    model_ids = list(dict.fromkeys(db_weights(study.dbs["ctxA"])["varID"]))
    poorly_called = set(model_ids[::4])
    records = []
    for record in study.records:
        rate = 0.2 if f"chr7_{record[1]}_{record[3]}_{record[4]}_b38" in poorly_called else 0.04
        records.append(record[:9] + [".|." if rng.random() < rate else gt for gt in record[9:]])
    panel = write_records(tmp_path / "missing.vcf", study.header_samples, records)
    out = tmp_path / "cov.txt.gz"
    with caplog.at_level("INFO"):
        write_panel_covariance([study.dbs["ctxA"]], panel, out, "varID", study.samples)
    got = read_cov(out)
    dosages, missing_fraction = bcftools_mean_imputed_dosages(panel, study.samples)
    site = {v: v.rsplit("_", 1)[0] for v in model_ids}
    well_called = {v for v in model_ids if missing_fraction[site[v]] <= 0.1}
    assert set(got["RSID1"]) | set(got["RSID2"]) == well_called
    assert len(model_ids) - len(well_called) == len(poorly_called)
    expected = [np.cov(dosages[site[a]], dosages[site[b]], ddof=1)[0, 1] for a, b in zip(got["RSID1"], got["RSID2"])]
    np.testing.assert_allclose(got["VALUE"], expected, rtol=1e-12, atol=1e-15)
    assert f"{len(poorly_called)} model SNPs of" in caplog.text and "calls missing in the panel" in caplog.text


def test_snps_missing_from_the_panel_are_dropped_from_their_genes_and_counted(study, tmp_path, caplog):
    weights = db_weights(study.dbs["ctxA"])
    dropped = set(weights.groupby("gene")["varID"].first())  # the first SNP of every gene
    kept_records = [r for r in study.records if f"chr7_{r[1]}_{r[3]}_{r[4]}_b38" not in dropped]
    # a record at a model SNP's position with other alleles does not stand in for it
    stand_in = next(r for r in study.records if f"chr7_{r[1]}_{r[3]}_{r[4]}_b38" in dropped)
    other = next(b for b in "ACGT" if b not in (stand_in[3], stand_in[4]))
    kept_records.append(stand_in[:4] + [other] + stand_in[5:])
    kept_records.sort(key=lambda r: int(r[1]))
    panel = write_records(tmp_path / "partial.vcf", study.header_samples, kept_records)
    out = tmp_path / "cov.txt.gz"
    with caplog.at_level("INFO"):
        write_panel_covariance([study.dbs["ctxA"]], panel, out, "varID", study.samples)
    got = read_cov(out)
    full = read_cov(covariance_of(study.dbs["ctxA"]))
    expected = full[~full["RSID1"].isin(dropped) & ~full["RSID2"].isin(dropped)].reset_index(drop=True)
    assert got[["GENE", "RSID1", "RSID2"]].equals(expected[["GENE", "RSID1", "RSID2"]])
    np.testing.assert_allclose(got["VALUE"], expected["VALUE"], rtol=1e-12, atol=1e-15)
    n_genes = weights["gene"].nunique()
    assert f"{len(dropped)} model SNPs of {n_genes} genes are not in the panel" in caplog.text


def test_nothing_in_the_panel_is_a_one_line_error(study, tmp_path, capsys):
    elsewhere = [["chr7", str(15_000 + i), ".", "A", "G", ".", "PASS", ".", "GT", *["0|1"] * len(study.header_samples)]
                 for i in range(3)]
    panel = write_records(tmp_path / "elsewhere.vcf", study.header_samples, elsewhere)
    out = tmp_path / "cov.txt.gz"
    assert main(["covariance", "--model-db-path", str(study.dbs["ctxA"]), "--vcf", str(panel), "--out",
                 str(out)]) == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("enpact covariance: error:") and "genome build" in message
    assert not out.exists()


def test_databases_that_disagree_on_an_effect_allele_are_an_error(study, tmp_path):
    flipped = tmp_path / "flipped.db"
    shutil.copy(study.dbs["ctxB"], flipped)
    with sqlite3.connect(flipped) as connection:
        var_id = connection.execute("SELECT varID FROM weights WHERE gene = 'GA' LIMIT 1").fetchone()[0]
        connection.execute("UPDATE weights SET ref_allele = eff_allele, eff_allele = ref_allele WHERE varID = ?",
                           (var_id,))
    shared = set(db_weights(study.dbs["ctxA"]).query("gene == 'GA'")["varID"])
    if var_id not in shared:
        pytest.skip("the first GA SNP of ctxB is not in ctxA's GA model")
    with pytest.raises(EnpactError, match=f"SNP {var_id} has alleles"):
        write_panel_covariance([study.dbs["ctxA"], flipped], study.vcf, tmp_path / "c.txt.gz")


# ---------------------------------------------------------------------------------------------------------
# several databases: per gene the union of their SNPs, against dosages read with bcftools


def bcftools_dosages(vcf: Path, samples: list[str]) -> dict[str, np.ndarray]:
    """ALT dosages per chr_pos_ref_alt id, read with `bcftools query` (missing calls as REF)."""
    text = subprocess.run(["bcftools", "query", "-s", ",".join(samples), "-f", "%CHROM\t%POS\t%REF\t%ALT[\t%GT]\n",
                           str(vcf)], check=True, capture_output=True, text=True).stdout
    dosages = {}
    for line in text.splitlines():
        chrom, pos, ref, alt, *gts = line.split("\t")
        dosages[f"{chrom}_{pos}_{ref}_{alt}"] = np.array(
            [sum(a == "1" for a in gt.replace("/", "|").split("|")) for gt in gts], dtype=float)
    return dosages


@pytest.mark.skipif(shutil.which("bcftools") is None, reason="bcftools not installed")
def test_several_databases_give_each_gene_the_union_of_their_snps(study, tmp_path):
    dbs = list(study.dbs.values())
    out = tmp_path / "joint.txt.gz"
    assert main(["-q", "covariance", "--model-db-path", *map(str, dbs), "--vcf", str(study.vcf), "--samples-file",
                 str(study.samples_file), "--out", str(out)]) == 0
    got = read_cov(out)
    union = pd.concat([db_weights(db) for db in dbs]).drop_duplicates(["gene", "varID"])
    dosages = bcftools_dosages(study.vcf, study.samples)
    assert sorted(got["GENE"].unique()) == sorted(union["gene"].unique())
    assert list(got["GENE"]) == sorted(got["GENE"])  # genes contiguous, sorted
    for gene, snps in union.groupby("gene"):
        block = got[got["GENE"] == gene]
        ids = set(block["RSID1"]) | set(block["RSID2"])
        assert ids == set(snps["varID"])  # the union of the databases' SNPs
        assert len(block) == len(ids) * (len(ids) + 1) // 2  # every unordered pair once
        matrix = np.column_stack([dosages[v.rsplit("_", 1)[0]] for v in snps["varID"]])
        reference = np.cov(matrix, rowvar=False, ddof=1)
        position = {v: i for i, v in enumerate(snps["varID"])}
        expected = [reference[position[a], position[b]] for a, b in zip(block["RSID1"], block["RSID2"])]
        np.testing.assert_allclose(block["VALUE"], expected, rtol=1e-12, atol=1e-15)
    # each database alone uses fewer SNPs for some gene than the union does
    single = read_cov(covariance_of(dbs[0]))
    assert len(single) < len(got)


def test_output_is_gzip_with_the_covariance_header(study, tmp_path):
    out = tmp_path / "c.txt.gz"
    write_panel_covariance([study.rsid_dbs["ctxB"]], study.vcf, out, "rsid", study.samples)
    with gzip.open(out, "rt") as handle:
        assert handle.readline() == "GENE RSID1 RSID2 VALUE\n"
    assert read_cov(out)["RSID1"].str.startswith("rs").all()
