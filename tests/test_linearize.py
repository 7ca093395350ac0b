"""Linearization recovers a planted linear truth; variant filters and identifiers follow PredictDB."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import bcftools_mean_imputed_dosages, random_sequence, write_fasta, write_vcf
from enpact.cli import main
from enpact.genome import Genome
from enpact.linearize import locus_dosages
from enpact.panel_covariance import write_panel_covariance
from enpact.variants import VariantFilters
from enpact.selection import loci_near_signal
from enpact.predictdb import read_linearized_chunk
from enpact.store import PersonalizedStore, write_personalized_store
from enpact.variants import VcfReader

N_SAMPLES = 300
WINDOW = 2000


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Two loci with random SNVs (plus an A/T SNV, an indel, a rare SNV) and personalized values exactly linear
    in the haplotype alleles of three SNVs per locus."""
    tmp = tmp_path_factory.mktemp("lin")
    rng = np.random.default_rng(42)
    sequence = random_sequence(20_000, 9)
    fasta = write_fasta(tmp / "g.fa", {"chr7": sequence})
    samples = [f"S{i:03d}" for i in range(N_SAMPLES)]
    centers = {"G1": 5_000, "G2": 14_000}
    records, alleles_by_pos = [], {}
    for gene, center in centers.items():
        positions = sorted(rng.choice(np.arange(center - 900, center + 900), 14, replace=False).tolist())
        for i, pos in enumerate(positions):
            ref = sequence[pos]
            if i == 0:  # strand-ambiguous SNV
                alt = {"A": "T", "T": "A", "C": "G", "G": "C"}[ref]
            else:
                alt = [b for b in "ACGT" if b != ref and {b, ref} not in ({"A", "T"}, {"C", "G"})][0]
            haps = (rng.random((N_SAMPLES, 2)) < rng.uniform(0.1, 0.5)).astype(int)
            if i == 1:  # a rare SNV: 2 carriers of 600 haplotypes, MAF 0.0033 < 0.01
                haps[:] = 0
                haps[:2, 0] = 1
            alleles_by_pos[(gene, pos)] = haps
            gts = [f"{a}|{b}" for a, b in haps]
            records.append("\t".join(["chr7", str(pos + 1), f"rs{pos}", ref, alt, ".", ".", ".", "GT", *gts]))
        ins_pos = center + 950  # an insertion inside the window
        gts = [f"{a}|{b}" for a, b in (rng.random((N_SAMPLES, 2)) < 0.3).astype(int)]
        records.append("\t".join(["chr7", str(ins_pos + 1), ".", sequence[ins_pos], sequence[ins_pos] + "GG",
                                  ".", ".", ".", "GT", *gts]))
    records.sort(key=lambda r: int(r.split("\t")[1]))
    vcf = write_vcf(tmp / "v.vcf", {"chr7": len(sequence)}, samples, records)
    truth, prediction = {}, np.zeros((2, N_SAMPLES, 2), np.float32)
    for g, (gene, center) in enumerate(centers.items()):
        positions = sorted(p for (name, p) in alleles_by_pos if name == gene)
        causal = positions[3:6]
        weights = np.array([0.8, -0.5, 0.3])
        truth[gene] = {f"chr7_{p + 1}": w / 2 for p, w in zip(causal, weights)}  # individual = mean of haplotypes
        for p, w in zip(causal, weights):
            prediction[g] += w * alleles_by_pos[(gene, p)]
    store = PersonalizedStore(["G1", "G2"], samples, prediction, np.zeros(2, np.float32),
                              {"predictor": {"window_bp": WINDOW}})
    write_personalized_store(tmp / "p.h5", store)
    pd.DataFrame({"locus_id": ["G1", "G2"], "chrom": "chr7", "center": list(centers.values()),
                  "name": ["A", "B"], "split": "train"}).to_csv(tmp / "loci.tsv", sep="\t", index=False)
    return tmp, fasta, vcf, truth


def test_planted_linear_truth_is_recovered(planted):
    tmp, fasta, vcf, truth = planted
    assert main(["linearize", "--personalized", str(tmp / "p.h5"), "--vcf", str(vcf), "--loci", str(tmp / "loci.tsv"),
                 "--seed", "1", "--no-progress", "--out", str(tmp / "lin.h5")]) == 0
    chunk = read_linearized_chunk(tmp / "lin.h5")
    summary = chunk.summary.set_index("gene")
    assert (summary["status"] == "ok").all()
    assert (summary["cv_R2_avg"] > 0.97).all() and (summary["rho_avg"] > 0.98).all()
    assert (summary["zscore_pval"] < 1e-10).all()
    assert (summary["n_snps_in_window"] == 15).all()  # 14 SNVs and the insertion
    assert (summary["n_snps_passing_filters"] == 12).all()  # 14 SNVs - 1 ambiguous - 1 rare; the indel is excluded
    weights = chunk.weights
    for gene, planted_weights in truth.items():
        found = weights[weights["gene"] == gene]
        found = dict(zip(found["varID"].str.rsplit("_", n=3).str[0], found["weight"]))
        for key, value in planted_weights.items():
            assert found.get(key, 0.0) == pytest.approx(value, abs=0.03), (gene, key)
        assert sum(abs(w) for k, w in found.items() if k not in planted_weights) < 0.05
    assert weights["varID"].str.match(r"^chr7_\d+_[ACGT]_[ACGT]_b38$").all()
    assert weights["rsid"].str.startswith("rs").all()


def test_filters_are_switchable(planted):
    _, fasta, vcf, _ = planted
    table = VcfReader(vcf).read("chr7", 4000, 6000, Genome(fasta))
    default, in_window = locus_dosages(table, 5000, WINDOW, VariantFilters())
    assert in_window == 15 and default.dosages.shape[1] == 12
    everything, _ = locus_dosages(table, 5000, WINDOW, VariantFilters(maf=0.0, keep_indels=True, keep_ambiguous=True))
    assert everything.dosages.shape[1] == 15
    assert any(len(a) > 1 for a in everything.alt)
    np.testing.assert_array_equal(default.dosages.max(axis=0) <= 2, True)


def test_constant_target_and_too_few_snps_are_recorded_not_crashed(planted, tmp_path):
    tmp, fasta, vcf, _ = planted
    samples = [f"S{i:03d}" for i in range(N_SAMPLES)]
    flat = PersonalizedStore(["G1", "G2"], samples, np.ones((2, N_SAMPLES, 2), np.float32), np.ones(2, np.float32),
                             {"predictor": {"window_bp": WINDOW}})
    write_personalized_store(tmp_path / "flat.h5", flat)
    assert main(["linearize", "--personalized", str(tmp_path / "flat.h5"), "--vcf", str(vcf), "--loci",
                 str(tmp / "loci.tsv"), "--no-progress", "--out", str(tmp_path / "a.h5")]) == 0
    assert set(read_linearized_chunk(tmp_path / "a.h5").summary["reason"]) == {"zero_variance"}
    assert main(["linearize", "--personalized", str(tmp / "p.h5"), "--vcf", str(vcf), "--loci",
                 str(tmp / "loci.tsv"), "--min-snps", "50", "--no-progress", "--out", str(tmp_path / "b.h5")]) == 0
    assert set(read_linearized_chunk(tmp_path / "b.h5").summary["reason"]) == {"too_few_snps"}


def test_loci_near_signal_are_those_with_a_hit_in_their_window(planted):
    tmp = planted[0]
    loci = pd.read_csv(tmp / "loci.tsv", sep="\t")
    hits = pd.DataFrame({"chrom": ["7", "chr7"], "pos": [4_200, 30_000]})
    assert loci_near_signal(loci, hits, WINDOW).tolist() == [True, False]


# ---------------------------------------------------------------------------------------------------------
# missing genotype calls: mean-imputed dosages and covariance, sites above lin_max_missing left out

N_MISSING_SAMPLES = 60
MISSING_CENTER = 5_000
# per SNV: (how many individuals get '.|.', how many a half-missing '0|.' call); 60 individuals, max_missing 0.1
MISSING_PLAN = [(0, 0), (3, 0), (1, 1), (9, 0), (6, 0), (2, 0), (0, 0), (4, 1)]


@pytest.fixture(scope="module")
def with_missing(tmp_path_factory):
    """Eight common SNVs in one window with planted missing calls (one site with 15% missing, one at exactly 10%),
    and personalized values linear in the true (unmasked) genotypes."""
    tmp = tmp_path_factory.mktemp("missing")
    rng = np.random.default_rng(7)
    sequence = random_sequence(12_000, 5)
    fasta = write_fasta(tmp / "g.fa", {"chr7": sequence})
    samples = [f"M{i:02d}" for i in range(N_MISSING_SAMPLES)]
    positions = sorted(rng.choice(np.arange(MISSING_CENTER - 800, MISSING_CENTER + 800), len(MISSING_PLAN),
                              replace=False).tolist())
    records, truth = [], []
    for pos, (n_missing, n_half) in zip(positions, MISSING_PLAN):
        ref = sequence[pos]
        alt = [b for b in "ACGT" if b != ref and {b, ref} not in ({"A", "T"}, {"C", "G"})][0]
        haps = (rng.random((N_MISSING_SAMPLES, 2)) < 0.35).astype(int)
        truth.append(haps)
        gts = np.array([f"{a}|{b}" for a, b in haps], dtype=object)
        chosen = rng.choice(N_MISSING_SAMPLES, n_missing + n_half, replace=False)
        gts[chosen[:n_missing]] = ".|."
        gts[chosen[n_missing:]] = [f"{a}|." for a, _ in haps[chosen[n_missing:]]]
        records.append("\t".join(["chr7", str(pos + 1), f"rs{pos}", ref, alt, ".", ".", ".", "GT", *gts]))
    vcf = write_vcf(tmp / "m.vcf", {"chr7": len(sequence)}, samples, records)
    weights = rng.normal(0, 1, len(MISSING_PLAN))
    noise = rng.normal(0, 0.2, (N_MISSING_SAMPLES, 2))
    prediction = np.einsum("k,ksh->sh", weights, np.array(truth, dtype=float)) + noise
    store = PersonalizedStore(["GM"], samples, prediction[None].astype(np.float32), np.zeros(1, np.float32),
                              {"predictor": {"window_bp": WINDOW}})
    write_personalized_store(tmp / "p.h5", store)
    pd.DataFrame({"locus_id": ["GM"], "chrom": "chr7", "center": [MISSING_CENTER], "name": ["M"],
                  "split": "train"}).to_csv(tmp / "loci.tsv", sep="\t", index=False)
    return tmp, fasta, vcf, samples


def test_dosages_are_mean_imputed_and_sites_above_the_missing_rate_left_out(with_missing):
    tmp, fasta, vcf, samples = with_missing
    reference, missing_fraction = bcftools_mean_imputed_dosages(vcf, samples)
    table = VcfReader(vcf).read("chr7", MISSING_CENTER - WINDOW, MISSING_CENTER + WINDOW, Genome(fasta))
    matrix, in_window = locus_dosages(table, MISSING_CENTER, WINDOW, VariantFilters())
    kept = [key for key, fraction in missing_fraction.items() if fraction <= 0.1]
    assert in_window == len(MISSING_PLAN) and len(kept) == len(MISSING_PLAN) - 1  # 9 of 60 missing: left out
    assert [v.rsplit("_", 1)[0] for v in matrix.var_id] == kept
    np.testing.assert_allclose(matrix.dosages, np.column_stack([reference[k] for k in kept]), rtol=0, atol=1e-15)
    assert matrix.too_missing == 1
    assert matrix.missing_calls == round(sum(missing_fraction[k] * len(samples) for k in kept))
    # a looser threshold takes the 15% site in, imputed the same way
    loose, _ = locus_dosages(table, MISSING_CENTER, WINDOW, VariantFilters(max_missing=0.2))
    np.testing.assert_allclose(loose.dosages, np.column_stack(list(reference.values())), rtol=0, atol=1e-15)
    assert loose.too_missing == 0


def test_database_covariance_is_that_of_mean_imputed_dosages(with_missing):
    tmp, fasta, vcf, samples = with_missing
    reference, missing_fraction = bcftools_mean_imputed_dosages(vcf, samples)
    assert main(["-q", "linearize", "--personalized", str(tmp / "p.h5"), "--vcf", str(vcf), "--loci",
                 str(tmp / "loci.tsv"), "--folds", "5", "--no-progress", "--out", str(tmp / "lin.h5")]) == 0
    kept = [key for key, fraction in missing_fraction.items() if fraction <= 0.1]
    assert main(["-q", "database", "--linearized", str(tmp / "lin.h5"), "--name", "m", "--outdir", str(tmp / "db"),
                 "--pval-threshold", "1", "--rho-threshold", "-1"]) == 0
    covariance = pd.read_csv(tmp / "db" / "m.txt.gz", sep=" ")
    in_model = sorted(set(covariance["RSID1"]) | set(covariance["RSID2"]))
    assert len(in_model) >= 3 and all(v.rsplit("_", 1)[0] in kept for v in in_model)
    expected = [np.cov(reference[a.rsplit("_", 1)[0]], reference[b.rsplit("_", 1)[0]], ddof=1)[0, 1]
                for a, b in zip(covariance["RSID1"], covariance["RSID2"])]
    np.testing.assert_allclose(covariance["VALUE"], expected, rtol=1e-12, atol=1e-15)
    # `enpact covariance` over the same individuals imputes the same way: the same file, byte for byte
    write_panel_covariance([tmp / "db" / "m.db"], vcf, tmp / "panel.txt.gz", "varID", samples)
    assert (tmp / "panel.txt.gz").read_bytes() == (tmp / "db" / "m.txt.gz").read_bytes()
    # the summary says how many calls were imputed and how many sites left out (the report reads it)
    summary = read_linearized_chunk(tmp / "lin.h5").summary.set_index("gene").loc["GM"]
    assert summary["n_snps_too_missing"] == 1 and summary["n_snps_passing_filters"] == len(kept)
    assert summary["n_missing_calls"] == round(sum(missing_fraction[k] * len(samples) for k in kept))


def test_nested_cv_option_reaches_the_fit_and_the_database(planted, tmp_path):
    """lin_nested_cv (--nested-cv): the chunk holds the nested statistics, and the database filters on them and
    reports them as pred.perf (PredictDB GTEx v8); without it, neither has them."""
    import sqlite3
    from pathlib import Path

    from enpact.options import from_params, task_arguments
    from enpact.steps.linearize import LinearizeConfig

    files = dict(personalized=Path("p"), vcf=Path("v"), loci=Path("l"), out=Path("o"))
    assert from_params(LinearizeConfig, {"lin_nested_cv": True}, **files).nested_cv
    assert not from_params(LinearizeConfig, {}, **files).nested_cv
    assert "--nested-cv" in task_arguments(LinearizeConfig, {"lin_nested_cv": True})  # what a Nextflow task gets
    tmp, _, vcf, _ = planted
    common = ["--personalized", str(tmp / "p.h5"), "--vcf", str(vcf), "--loci", str(tmp / "loci.tsv"), "--seed", "1",
              "--no-progress"]
    for nested in (True, False):
        chunk = tmp_path / f"lin_{nested}.h5"
        assert main(["-q", "linearize", *common, *(["--nested-cv"] if nested else []), "--out", str(chunk)]) == 0
        summary = read_linearized_chunk(chunk).summary.set_index("gene")
        outdir = tmp_path / f"db_{nested}"
        assert main(["-q", "database", "--linearized", str(chunk), "--name", "m", "--outdir", str(outdir)]) == 0
        with sqlite3.connect(outdir / "m.db") as connection:
            extra = pd.read_sql("SELECT * FROM extra ORDER BY gene", connection).set_index("gene")
        published = pd.read_csv(outdir / "m.summary.tsv", sep="\t").set_index("gene")
        if nested:  # exactly linear targets: the outer folds are predicted as well as the inner ones
            assert (summary["nested_cv_converged"] == 5).all() and (summary["nested_cv_rho_avg"] > 0.98).all()
            assert (summary["nested_cv_zscore_pval"] < 1e-10).all()
            np.testing.assert_array_equal(extra["pred.perf.pval"], summary.loc[extra.index, "nested_cv_zscore_pval"])
            np.testing.assert_allclose(extra["pred.perf.R2"], summary.loc[extra.index, "nested_cv_rho_avg"] ** 2)
            assert (extra["nested_cv_converged"] == 5).all() and "nested_cv_R2_avg" in published
        else:
            assert summary["nested_cv_rho_avg"].isna().all()
            np.testing.assert_array_equal(extra["pred.perf.pval"], summary.loc[extra.index, "zscore_pval"])
            assert "nested_cv_converged" not in extra and "nested_cv_R2_avg" not in published
        assert list(extra.index) == ["G1", "G2"]
