"""Checks of the bundled demo data (src/enpact/data/demo), mostly against independent tools and recomputations."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pyfaidx
import pysam
import pytest
from scipy.stats import norm

import enpact

DEMO = Path(enpact.__file__).parent / "data" / "demo"
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_demo_data.py"
AUTOSOMES = [f"chr{i}" for i in range(1, 7)]
CHROM_ORDER = [*AUTOSOMES, "chrX", "chrM"]
LENGTHS = {**{c: 300_000 for c in AUTOSOMES}, "chrX": 100_000, "chrM": 16_569}
N_SAMPLES = 80
WINDOW = 4096
MOTIFS = ["TATAAA", "GGGCGG", "CACGTG"]
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def need_tool(name: str) -> str:
    """Path of a command-line tool; the test fails (not skips) when it is missing, since CI must have it."""
    path = shutil.which(name)
    assert path, f"{name} not on PATH"
    return path


@pytest.fixture(scope="module")
def generator():
    """The generator script imported as a module (heavy imports there are lazy)."""
    spec = importlib.util.spec_from_file_location("make_demo_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_demo_data"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def genes() -> pd.DataFrame:
    """genes.tsv."""
    return pd.read_csv(DEMO / "genes.tsv", sep="\t")


@pytest.fixture(scope="module")
def fasta() -> pyfaidx.Fasta:
    """genome.fa via pyfaidx."""
    return pyfaidx.Fasta(str(DEMO / "genome.fa"), as_raw=True, sequence_always_upper=False)


@pytest.fixture(scope="module")
def truth() -> dict:
    """truth/planted.json."""
    return json.loads((DEMO / "truth" / "planted.json").read_text())


@pytest.fixture(scope="module")
def vcf() -> dict:
    """Every record of genotypes.vcf.gz read with pysam: fields, allele-index matrix (-1 missing), phasing."""
    handle = pysam.VariantFile(str(DEMO / "genotypes.vcf.gz"))
    rows, gts, phased = [], [], []
    for rec in handle:
        rows.append((rec.chrom, rec.pos, rec.id or ".", rec.ref, rec.alts))
        calls = [s["GT"] for s in rec.samples.values()]
        gts.append([[-1 if a is None else a for a in gt] for gt in calls])
        phased.append([s.phased for s in rec.samples.values()])
    table = pd.DataFrame(rows, columns=["chrom", "pos", "id", "ref", "alts"])
    return dict(header=handle.header, table=table, gt=np.array(gts), phased=np.array(phased))


def gtf_genes(path: Path) -> pd.DataFrame:
    """gene lines of a GTF parsed independently of the generator."""
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        f = line.split("\t")
        attrs = dict(re.findall(r'(\S+) "([^"]*)"', f[8]))
        rows.append(dict(chrom=f[0], feature=f[2], start=int(f[3]), end=int(f[4]), strand=f[6], **attrs))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- size, genome


def test_demo_directory_is_below_8_mb():
    """What is bundled (the tiny random Borzoi is written to the cache folder, not here)."""
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file() and "borzoi_tiny" not in p.parts)
    assert total < 8 * 1024 * 1024, f"demo data is {total / 1e6:.1f} MB"


def test_borzoi_demo_checkpoint_goes_to_the_cache_folder_not_the_source_tree(tmp_path, monkeypatch):
    from enpact.params import demo_params, demo_weights_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert DEMO.is_dir() and os.access(DEMO, os.W_OK)  # a writable checkout: the case that wrote into it
    assert demo_weights_dir("borzoi") == tmp_path / "cache" / "enpact" / "borzoi_tiny"
    assert demo_params("borzoi")["weights"] == str(tmp_path / "cache" / "enpact" / "borzoi_tiny")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert demo_weights_dir("borzoi") == tmp_path / "home" / ".cache" / "enpact" / "borzoi_tiny"
    # the Nextflow profile reads the same folder
    config = (Path(__file__).parents[1] / "conf" / "test_borzoi.config").read_text()
    assert "System.getenv('XDG_CACHE_HOME') ?: System.getenv('HOME') + '/.cache'}/enpact/borzoi_tiny" in config


def test_fai_matches_the_fasta_bytes():
    expected, offset = [], 0
    with open(DEMO / "genome.fa", "rb") as handle:
        name, length, seq_offset = None, 0, 0
        for line in handle:
            offset += len(line)
            if line.startswith(b">"):
                if name:
                    expected.append(f"{name}\t{length}\t{seq_offset}\t60\t61")
                name, length, seq_offset = line[1:].strip().decode(), 0, offset
            else:
                length += len(line.rstrip(b"\n"))
                assert len(line) <= 61
        expected.append(f"{name}\t{length}\t{seq_offset}\t60\t61")
    assert (DEMO / "genome.fa.fai").read_text().splitlines() == expected


def test_samtools_and_pyfaidx_agree_on_regions(fasta):
    samtools = need_tool("samtools")
    regions = [("chr1", 1, 200), ("chr3", 149_950, 150_070), ("chrX", 99_901, 100_000), ("chrM", 16_500, 16_569)]
    for chrom, start, end in regions:
        out = subprocess.run([samtools, "faidx", str(DEMO / "genome.fa"), f"{chrom}:{start}-{end}"],
                             check=True, capture_output=True, text=True).stdout
        via_samtools = "".join(out.splitlines()[1:])
        assert via_samtools == fasta[chrom][start - 1 : end]
        assert len(via_samtools) == end - start + 1


def test_genome_chromosomes_alphabet_and_composition(fasta):
    assert list(fasta.keys()) == CHROM_ORDER
    for chrom, length in LENGTHS.items():
        seq = fasta[chrom][:]
        assert len(seq) == length
        assert set(seq) <= set("ACGTN")
        acgt = len(seq) - seq.count("N")
        gc = (seq.count("G") + seq.count("C")) / acgt
        assert 0.35 < gc < 0.5, (chrom, gc)


def test_n_runs_exist_and_stay_away_from_tss(fasta, genes):
    runs = []
    for chrom in CHROM_ORDER:
        runs += [(chrom, m.start(), m.end()) for m in re.finditer("N+", fasta[chrom][:])]
    assert 2 <= len(runs) <= 10
    for chrom, start, end in runs:
        assert end - start <= 500
        tss = genes.loc[genes["chrom"] == chrom, "tss"].to_numpy()
        assert np.all((tss < start - 5000) | (tss >= end + 5000)), (chrom, start, end)


def test_planted_motif_copies_are_present_near_tss(fasta, genes, truth):
    per_gene = truth["expression"]["genes"]
    planted, found = [], []
    for g in genes.itertuples():
        window = fasta[g.chrom][g.tss - 500 : g.tss + 500]
        if g.strand == "-":
            window = window.translate(COMPLEMENT)[::-1]
        count = sum(len(re.findall(f"(?={m})", window)) for m in MOTIFS)
        planted.append(per_gene[g.gene_id]["motif_copies"])
        found.append(count)
    planted, found = np.array(planted), np.array(found)
    assert np.all(found >= planted)
    assert planted.min() == 0 and planted.max() == 12
    assert np.corrcoef(planted, found)[0, 1] > 0.9


def test_genome_generator_is_deterministic_and_reproduces_the_bundled_fasta(generator, genes, fasta):
    layout, runs = generator.make_gene_layout(generator.DEFAULT_SEED)
    pd.testing.assert_frame_equal(layout[genes.columns].reset_index(drop=True), genes)
    first, copies1 = generator.make_genome(layout, runs, generator.DEFAULT_SEED)
    second, copies2 = generator.make_genome(layout, runs, generator.DEFAULT_SEED)
    other, _ = generator.make_genome(layout, runs, generator.DEFAULT_SEED + 1)
    assert np.array_equal(copies1, copies2)
    for chrom in CHROM_ORDER:
        assert np.array_equal(first[chrom], second[chrom])
        assert not np.array_equal(first[chrom], other[chrom])
        assert generator.BASES[first[chrom]].tobytes().decode() == fasta[chrom][:]


# ------------------------------------------------------------------------------------------------ genes


def test_genes_layout(genes):
    assert len(genes) == 246 and genes["gene_id"].is_unique and genes["gene_name"].is_unique
    assert genes["chrom"].value_counts().to_dict() == {**{c: 40 for c in AUTOSOMES}, "chrX": 6}
    assert all(re.fullmatch(r"ENSGDEMO\d{5}\.\d+", g) for g in genes["gene_id"])
    assert set(genes["strand"]) == {"+", "-"}
    assert set(genes["gene_type"]) == {"protein_coding", "lncRNA"}
    assert 3 <= (genes["gene_type"] == "lncRNA").sum() <= 40
    for chrom, part in genes.groupby("chrom"):
        tss = np.sort(part["tss"].to_numpy())
        assert np.diff(tss).min() >= 7000
        assert tss.min() >= 5000 and tss.max() <= LENGTHS[chrom] - 5000


def test_gtf_agrees_with_genes_tsv(genes):
    gtf = gtf_genes(DEMO / "genes.gtf")
    counts = gtf.groupby("gene_id")["feature"].value_counts().unstack()
    assert (counts[["gene", "transcript", "exon"]] == 1).all().all() and len(counts) == len(genes)
    gene_lines = gtf[gtf["feature"] == "gene"].set_index("gene_id").loc[genes["gene_id"]]
    tss = np.where(gene_lines["strand"] == "+", gene_lines["start"] - 1, gene_lines["end"] - 1)
    assert np.array_equal(tss, genes["tss"].to_numpy())
    assert (gene_lines["gene_name"].to_numpy() == genes["gene_name"].to_numpy()).all()
    assert (gene_lines["gene_type"].to_numpy() == genes["gene_type"].to_numpy()).all()
    assert (gene_lines["chrom"].to_numpy() == genes["chrom"].to_numpy()).all()
    assert (gene_lines["end"] <= gene_lines["chrom"].map(LENGTHS)).all() and (gene_lines["start"] >= 1).all()
    tx = gtf[gtf["feature"] != "gene"]
    assert tx["transcript_id"].notna().all()


# ------------------------------------------------------------------------------------------------- VCFs


def check_ref(vcf_path: Path) -> subprocess.CompletedProcess:
    """bcftools norm --check-ref e against genome.fa."""
    cmd = [need_tool("bcftools"), "norm", "--check-ref", "e", "-f", str(DEMO / "genome.fa"), "-Ou", "-o", "/dev/null",
           str(vcf_path)]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_bcftools_accepts_refs_of_valid_vcfs_and_rejects_the_mismatch():
    assert check_ref(DEMO / "genotypes.vcf.gz").returncode == 0
    assert check_ref(DEMO / "broken" / "symbolic.vcf.gz").returncode == 0
    bad = check_ref(DEMO / "broken" / "ref_mismatch.vcf.gz")
    assert bad.returncode != 0 and "mismatch" in bad.stderr.lower()


def test_indels_are_left_aligned():
    result = check_ref(DEMO / "genotypes.vcf.gz")
    realigned = re.search(r"total/split/realigned/skipped:\s+(\d+)/(\d+)/(\d+)/(\d+)", result.stderr)
    assert realigned and realigned.group(3) == "0" and realigned.group(4) == "0"


def test_vcf_header(vcf):
    header = vcf["header"]
    assert list(header.samples) == [f"IND{i:03d}" for i in range(1, N_SAMPLES + 1)]
    assert {c: header.contigs[c].length for c in header.contigs} == LENGTHS
    assert list(header.formats) == ["GT"]
    assert str(header).startswith("##fileformat=VCFv4.2\n")


def test_vcf_records_match_the_genome_independently(vcf, fasta):
    t = vcf["table"]
    for rec in t.itertuples():
        assert fasta[rec.chrom][rec.pos - 1 : rec.pos - 1 + len(rec.ref)] == rec.ref
        assert all(a != rec.ref and set(a) <= set("ACGT") for a in rec.alts)


def test_vcf_is_sorted_without_overlaps_and_has_the_planted_features(vcf):
    t = vcf["table"]
    assert set(t["chrom"]) == {*AUTOSOMES, "chrX"}
    order = t["chrom"].map(CHROM_ORDER.index).to_numpy() * 10**7 + t["pos"].to_numpy()
    assert np.all(np.diff(order) > 0)
    for _, part in t.groupby("chrom"):
        end = part["pos"].to_numpy() + part["ref"].str.len().to_numpy()
        assert np.all(part["pos"].to_numpy()[1:] >= end[:-1])
    n = len(t)
    multi = t["alts"].map(len) == 2
    indel = ~multi & ((t["ref"].str.len() > 1) | (t["alts"].map(lambda a: len(a[0])) > 1))
    assert 0.03 < indel.sum() / n < 0.07
    assert (t.loc[indel, "ref"].str.len() > 1).any() and (t.loc[indel, "ref"].str.len() == 1).any()
    assert 0.01 < multi.sum() / n < 0.03
    gt = vcf["gt"]
    assert gt[multi.to_numpy()].max() == 2 and gt[~multi.to_numpy()].max() == 1
    missing = (gt == -1).all(-1)
    assert ((gt == -1).any(-1) == missing).all()  # only whole calls are missing
    assert 0.003 < missing.mean() < 0.007
    ids = t["id"]
    assert ids.str.fullmatch(r"rs\d+|\.").all() and 0 < (ids == ".").sum() < 0.03 * n
    assert ids[ids != "."].is_unique


def test_all_genotypes_are_phased_except_in_unphased_vcf(vcf):
    assert vcf["phased"].all()
    bcftools = need_tool("bcftools")
    query = lambda p: subprocess.run([bcftools, "query", "-f", "[%GT\\t]\\n", str(p)],  # noqa: E731
                                     check=True, capture_output=True, text=True).stdout.splitlines()
    assert not any("/" in line for line in query(DEMO / "genotypes.vcf.gz"))
    assert not any("/" in line for line in query(DEMO / "broken" / "symbolic.vcf.gz"))
    unphased = [line for line in query(DEMO / "broken" / "unphased.vcf.gz") if "/" in line]
    assert len(unphased) == 1 and "|" not in unphased[0] and ("0/1" in unphased[0] or "1/0" in unphased[0])


def test_segregating_sites_per_tss_window(vcf, genes):
    t = vcf["table"]
    counts = [((t["chrom"] == g.chrom) & (t["pos"] - 1 >= g.tss - 2048) & (t["pos"] - 1 < g.tss + 2048)).sum()
              for g in genes.itertuples()]
    assert 10 <= np.mean(counts) <= 25


def test_broken_vcfs_are_indexed_and_small():
    for name in ["unphased", "ref_mismatch", "symbolic"]:
        path = DEMO / "broken" / f"{name}.vcf.gz"
        assert (DEMO / "broken" / f"{name}.vcf.gz.tbi").exists()
        with pysam.VariantFile(str(path)) as handle:
            records = list(handle.fetch("chr1", 0, 20_000))
        assert 3 <= len(records) <= 20
        assert {r.chrom for r in records} == {"chr1"}


def test_symbolic_vcf_has_del_and_star_alleles():
    with pysam.VariantFile(str(DEMO / "broken" / "symbolic.vcf.gz")) as handle:
        records = list(handle)
    alts = [a for r in records for a in r.alts]
    assert "<DEL>" in alts and "*" in alts
    star = next(r for r in records if "*" in r.alts)
    star_index = star.alts.index("*") + 1
    assert any(star_index in s["GT"] for s in star.samples.values())
    assert sum(len(r.alts) == 1 and len(r.ref) == 1 and len(r.alts[0]) == 1 for r in records) >= 5


def test_ref_mismatch_vcf_has_exactly_one_bad_ref(fasta):
    with pysam.VariantFile(str(DEMO / "broken" / "ref_mismatch.vcf.gz")) as handle:
        bad = [r.pos for r in handle if fasta[r.chrom][r.pos - 1 : r.pos - 1 + len(r.ref)] != r.ref]
    assert len(bad) == 1


# ------------------------------------------------------------------------------------------- expression


@pytest.fixture(scope="module")
def expression() -> pd.DataFrame:
    """expression.tsv indexed by gene id."""
    return pd.read_csv(DEMO / "expression.tsv", sep="\t", index_col="NAME")


def test_expression_layout(expression, genes):
    assert expression.shape == (246, N_SAMPLES)
    assert list(expression.columns) == [f"IND{i:03d}" for i in range(1, N_SAMPLES + 1)]
    assert list(expression.index) == list(genes["gene_id"])
    assert not expression.isna().any().any()
    first_rows = (DEMO / "expression.tsv").read_text().splitlines()[1:20]
    for value in "\t".join(line.split("\t", 1)[1] for line in first_rows).split("\t"):
        assert len(re.sub(r"[-.]|e.*", "", value).lstrip("0")) <= 6, value


@pytest.fixture(scope="module")
def genetic() -> pd.DataFrame:
    """truth/genetic_expression.tsv (planted genetic values of the 80) indexed by gene id."""
    return pd.read_csv(DEMO / "truth" / "genetic_expression.tsv", sep="\t", index_col="NAME")


@pytest.fixture(scope="module")
def signal() -> pd.DataFrame:
    """truth/gene_signal.tsv indexed by gene id."""
    return pd.read_csv(DEMO / "truth" / "gene_signal.tsv", sep="\t", index_col="gene_id")


def planted_function(inputs: np.ndarray, plant: dict) -> np.ndarray:
    """sum_k w_k (x_k - m_k) / s_k of model inputs x (rows), written out from planted.json."""
    z = (np.asarray(inputs, dtype=np.float64) - np.array(plant["input_mean"])) / np.array(plant["input_sd"])
    return z @ np.array(plant["track_weights"])


def test_truth_tables_layout(genes, genetic, signal, expression):
    assert list(genetic.index) == list(genes["gene_id"]) and list(genetic.columns) == list(expression.columns)
    assert list(signal.index) == list(genes["gene_id"])
    assert list(signal.columns) == ["gene_name", "chrom", "reference_value", "gene_offset", "genetic_sd", "noise_sd",
                                    "cis_h2", "genetic_sd_gwas", "haplotype_windows"]
    assert not genetic.isna().any().any() and not signal.isna().any().any()


def test_gene_levels_follow_the_planted_function_of_the_reference_features(expression, genetic, signal, truth):
    plant = truth["expression"]
    tracks = pd.read_csv(DEMO / "truth" / "reference_tracks.tsv", sep="\t", index_col="gene_id").loc[signal.index]
    assert tracks.std().min() > 1e-3  # tracks do vary between genes
    inputs = np.log1p(np.maximum(tracks.to_numpy(np.float64), 0))  # the elastic net's inputs, written out
    np.testing.assert_allclose(inputs.mean(0), plant["input_mean"], rtol=1e-5)
    np.testing.assert_allclose(inputs.std(0), plant["input_sd"], rtol=1e-3)
    np.testing.assert_allclose(planted_function(inputs, plant), signal["reference_value"], atol=2e-3)
    # the planted weights are recovered from the reference windows by least squares: f is linear in the inputs
    z = (inputs - inputs.mean(0)) / inputs.std(0)
    weights = np.linalg.lstsq(np.column_stack([z, np.ones(len(z))]), signal["reference_value"], rcond=None)[0]
    np.testing.assert_allclose(weights[:-1], plant["track_weights"], atol=2e-3)
    assert 1.0 < signal["reference_value"].std() < 1.6  # between-gene variation the features explain
    offsets = signal["gene_offset"].to_numpy()
    assert 0.3 < offsets.std() < 0.5 and abs(offsets.mean()) < 0.1  # the N(0, 0.4^2) gene offsets
    planted_offsets = [plant["genes"][g]["gene_offset"] for g in signal.index]
    np.testing.assert_allclose(planted_offsets, offsets, rtol=1e-5, atol=1e-6)
    # an individual's genetic value scatters around the reference value; the gene mean adds the offset
    assert np.corrcoef(genetic.mean(axis=1), signal["reference_value"])[0, 1] > 0.97
    noise_of_mean = expression.mean(axis=1) - genetic.mean(axis=1) - offsets
    assert np.abs(noise_of_mean).max() < 0.03  # the mean of 80 N(0, 0.05^2) draws
    assert np.corrcoef(expression.mean(axis=1), signal["reference_value"])[0, 1] > 0.9


def test_individual_values_are_planted_genetic_values_plus_noise(expression, genetic, signal, truth):
    residual = expression.to_numpy() - genetic.to_numpy() - signal[["gene_offset"]].to_numpy()
    assert 0.047 < residual.std() < 0.053 and abs(residual.mean()) < 0.002  # the N(0, 0.05^2) noise
    assert truth["expression"]["individual_noise_sd"] == 0.05 and (signal["noise_sd"] == 0.05).all()
    np.testing.assert_allclose(genetic.std(axis=1, ddof=0), signal["genetic_sd"], rtol=1e-3, atol=1e-6)
    h2 = signal["genetic_sd"] ** 2 / (signal["genetic_sd"] ** 2 + 0.05**2)
    np.testing.assert_allclose(h2, signal["cis_h2"], rtol=1e-3, atol=1e-5)
    # a clear but realistic between-individual signal: most genes vary, a third to two thirds substantially
    assert 0.02 < signal["genetic_sd"].median() < 0.06 and (signal["genetic_sd"] > 0).all()
    assert 0.25 < (signal["cis_h2"] >= truth["expression"]["substantial_h2"]).mean() < 0.75
    # observed values follow the planted genetic values across individuals where the signal is substantial
    substantial = signal.index[signal["cis_h2"] >= 0.3]
    r = [np.corrcoef(expression.loc[g], genetic.loc[g])[0, 1] for g in substantial]
    assert np.median(r) > 0.7
    # between-individual differences are small next to between-gene differences (the tiny Enformer responds
    # weakly to single variants)
    assert genetic.std(axis=1).median() < 0.1 * signal["reference_value"].std()
    assert (signal["haplotype_windows"] >= 2).all() and signal["haplotype_windows"].median() < 40


def test_planted_genetic_values_are_enpact_predictions_of_the_haplotype_windows(genes, genetic, truth, vcf):
    """Recomputed through enpact's own window builder and predictor on the bundled VCF: the planted genetic value
    of an individual is the planted function of the elastic net's inputs, averaged over its two haplotypes."""
    from enpact.genome import Genome
    from enpact.models.elastic_net import elastic_net_inputs
    from enpact.predict import predict_loci
    from enpact.predictors.enformer import EnformerPredictor
    from enpact.variants import VcfReader

    picks = genes.iloc[[3, 60, 125, 200]]
    loci = pd.DataFrame({"locus_id": picks["gene_id"], "chrom": picks["chrom"], "center": picks["tss"]})
    predictor = EnformerPredictor(weights=str(DEMO / "enformer_tiny"), device="cpu", precision="fp32",
                                  batch_size=32, bins=4)
    recomputed = {}
    for item in predict_loci(predictor, Genome(DEMO / "genome.fa"), loci.reset_index(drop=True),
                             VcfReader(DEMO / "genotypes.vcf.gz"), progress=False):
        per_window = planted_function(elastic_net_inputs(item.features), truth["expression"])
        recomputed[loci["locus_id"].iloc[item.locus_index]] = per_window[item.windows.haplotype_window].mean(1)
    t = vcf["table"]
    for g in picks.itertuples():
        # the VCF's missing calls count as reference in enpact; the truth used the simulated genotypes
        near = ((t["chrom"] == g.chrom) & ((t["pos"] - 1 - g.tss).abs() < WINDOW)).to_numpy()
        complete = ~(vcf["gt"][near] < 0).any(axis=(0, 2))
        assert complete.sum() > 40
        np.testing.assert_allclose(recomputed[g.gene_id][complete], genetic.loc[g.gene_id].to_numpy()[complete],
                                   rtol=1e-4, atol=1e-4)


def test_expression_is_the_generator_output_for_the_planted_values(generator, expression, genetic, signal):
    values, offsets = generator.simulate_expression(genetic.to_numpy(), generator.DEFAULT_SEED)
    np.testing.assert_allclose(values, expression.to_numpy(), rtol=0, atol=2e-5)  # 6 significant digits
    np.testing.assert_allclose(offsets, signal["gene_offset"], rtol=1e-5, atol=1e-6)
    again, _ = generator.simulate_expression(genetic.to_numpy(), generator.DEFAULT_SEED)
    other, _ = generator.simulate_expression(genetic.to_numpy(), generator.DEFAULT_SEED + 1)
    assert np.array_equal(values, again) and not np.allclose(values, other)


def test_haplotype_features_are_deterministic_and_reproduce_the_planted_values(generator, genes, genetic, truth):
    layout, runs = generator.make_gene_layout(generator.DEFAULT_SEED)
    sequences, _ = generator.make_genome(layout, runs, generator.DEFAULT_SEED)
    variants = generator.make_variants(sequences, generator.DEFAULT_SEED)
    some = layout.iloc[[0, 100, 239]].reset_index(drop=True)
    first = generator.haplotype_features(DEMO, some, variants.haplotypes, variants.table)
    second = generator.haplotype_features(DEMO, some, variants.haplotypes, variants.table)
    plant = truth["expression"]
    for a, b, gene_id in zip(first, second, some["gene_id"]):
        assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.haplotype_window, b.haplotype_window)
        assert a.haplotype_window.shape == (generator.N_VCF_INDIVIDUALS + generator.N_GWAS_INDIVIDUALS, 2)
        _, values = generator.planted_values([a], np.array(plant["input_mean"]), np.array(plant["input_sd"]))
        # the stored values have 6 significant digits, and the predictor's float32 kernels differ by instruction
        # set: on an AVX2 CPU they deviate from the AMX-made file by up to 4e-6 (2.8e-5 relative)
        np.testing.assert_allclose(values[0, : generator.N_VCF_INDIVIDUALS], genetic.loc[gene_id], rtol=1e-4,
                                   atol=1e-5)


# ------------------------------------------------------------------------------------------- checkpoint


def test_tiny_enformer_loads_and_reproduces_reference_tracks(fasta, genes):
    import torch
    from enformer_pytorch import Enformer

    model = Enformer.from_pretrained(str(DEMO / "enformer_tiny"))
    model.eval()
    config = json.loads((DEMO / "enformer_tiny" / "config.json").read_text())
    assert config["target_length"] == 4 and config["output_heads"] == {"human": 8}
    assert json.loads((DEMO / "enformer_tiny" / "enpact_predictor.json").read_text())["window_bp"] == WINDOW
    names = pd.read_csv(DEMO / "enformer_tiny" / "tracks.tsv", sep="\t")
    assert list(names.columns) == ["index", "name"] and list(names["index"]) == list(range(8))
    assert names["name"].is_unique
    expected = pd.read_csv(DEMO / "truth" / "reference_tracks.tsv", sep="\t", index_col="gene_id")
    assert list(expected.columns) == list(names["name"])
    lut = {b: i for i, b in enumerate("ACGT")}
    picks = genes.iloc[[0, 57, 131, 245]]
    batch = np.zeros((len(picks), WINDOW, 4), dtype=np.float32)
    for k, g in enumerate(picks.itertuples()):
        for i, base in enumerate(fasta[g.chrom][g.tss - 2048 : g.tss + 2048]):
            if base in lut:
                batch[k, i, lut[base]] = 1.0
    with torch.no_grad():
        out = model(torch.from_numpy(batch), head="human").numpy()
        single = model(torch.from_numpy(batch[:1]), head="human")
    assert tuple(single.shape) == (1, 4, 8)
    np.testing.assert_allclose(out.mean(1), expected.loc[picks["gene_id"]].to_numpy(), rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------------- GWAS

GWAS_COLUMNS = ["variant_id", "rsid", "chromosome", "position", "effect_allele", "non_effect_allele", "frequency",
                "effect_size", "standard_error", "zscore", "pvalue", "sample_size"]


@pytest.fixture(scope="module")
def gwas() -> pd.DataFrame:
    """gwas.tsv.gz (gzip checked by opening it with gzip explicitly)."""
    with gzip.open(DEMO / "gwas.tsv.gz", "rt") as handle:
        return pd.read_csv(handle, sep="\t", dtype={"rsid": str})


def test_gwas_statistics_are_internally_consistent(gwas):
    assert list(gwas.columns) == GWAS_COLUMNS
    assert (gwas["sample_size"] == 1000).all()
    np.testing.assert_allclose(gwas["effect_size"] / gwas["standard_error"], gwas["zscore"], rtol=5e-5)
    p = 2 * norm.sf(np.abs(gwas["zscore"]))
    np.testing.assert_allclose(np.log10(gwas["pvalue"]), np.log10(p), rtol=1e-3, atol=1e-5)
    assert gwas["frequency"].between(0, 1, inclusive="neither").all()
    order = gwas["chromosome"].map(CHROM_ORDER.index).to_numpy() * 10**7 + gwas["position"].to_numpy()
    assert np.all(np.diff(order) > 0)


def test_gwas_rows_are_exactly_the_biallelic_vcf_records(gwas, vcf):
    t = vcf["table"]
    bi = t[t["alts"].map(len) == 1]
    ids = bi["chrom"] + "_" + bi["pos"].astype(str) + "_" + bi["ref"] + "_" + bi["alts"].str[0] + "_b38"
    assert list(gwas["variant_id"]) == list(ids)
    assert list(gwas["rsid"]) == list(bi["id"])
    assert (gwas["position"].to_numpy() == bi["pos"].to_numpy()).all()


def test_gwas_allele_swaps_are_consistent(gwas):
    parts = gwas["variant_id"].str.split("_")
    ref, alt = parts.str[2], parts.str[3]
    swapped = gwas["effect_allele"] == ref
    assert ((swapped & (gwas["non_effect_allele"] == alt)) | (~swapped & (gwas["effect_allele"] == alt)
                                                               & (gwas["non_effect_allele"] == ref))).all()
    assert 0.25 < swapped.mean() < 0.35


def test_causal_gene_table_matches_the_planted_gwas(genes, truth, signal):
    text = (DEMO / "truth" / "causal_genes.tsv").read_text()
    assert text.splitlines()[0] == "gene_id\teffect"
    table = pd.read_csv(DEMO / "truth" / "causal_genes.tsv", sep="\t")
    assert list(table["gene_id"]) == list(genes["gene_id"])
    causal = table[table["effect"] != 0]
    planted = {c["gene_id"]: c["gamma"] for c in truth["gwas"]["causal_genes"]}
    assert len(causal) == len(planted) == 6
    np.testing.assert_allclose(causal.set_index("gene_id")["effect"].loc[list(planted)], list(planted.values()),
                               rtol=1e-5)
    assert (causal["effect"] > 0).any() and (causal["effect"] < 0).any()
    # causal genes are genes the pipeline can model, on the demo's split chromosomes, apart from each other
    located = genes.set_index("gene_id").loc[causal["gene_id"]]
    assert set(located["chrom"]) <= set(AUTOSOMES)
    assert (signal.loc[causal["gene_id"], "cis_h2"] >= 0.5).all()
    for (_, a), (_, b) in combinations(located.iterrows(), 2):
        assert a["chrom"] != b["chrom"] or abs(a["tss"] - b["tss"]) >= 30_000
    variance = np.array([c["genetic_variance"] for c in truth["gwas"]["causal_genes"]])
    assert variance.min() > 0.02  # each detectable in 1,000 individuals
    assert 0.2 < truth["gwas"]["h2_realised"] < 0.3 and truth["gwas"]["h2_target"] == 0.25


def test_gwas_has_strong_signals_at_the_causal_genes_and_mostly_null_variants(gwas, genes, truth):
    located = genes.set_index("gene_id")
    strong = 0
    for c in truth["gwas"]["causal_genes"]:
        g = located.loc[c["gene_id"]]
        here = gwas[(gwas["chromosome"] == g["chrom"]) & ((gwas["position"] - 1 - g["tss"]).abs() < 2048)]
        strong += here["pvalue"].min() < 1e-6
    assert strong >= 4
    assert (gwas["pvalue"] < 1e-6).mean() < 0.05
    assert (gwas["pvalue"] < 0.05).mean() < 0.3
