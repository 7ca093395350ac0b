"""Linearization recovers a planted linear truth; variant filters and identifiers follow PredictDB."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import random_sequence, write_fasta, write_vcf
from enpact.cli import main
from enpact.genome import Genome
from enpact.linearize import locus_dosages
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
