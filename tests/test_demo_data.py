"""Checks of the bundled demo data (src/enpact/data/demo), mostly against independent tools and recomputations."""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import shutil
import subprocess
import sys
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
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total < 8 * 1024 * 1024, f"demo data is {total / 1e6:.1f} MB"


def test_fai_matches_the_fasta_bytes():
    expected, offset = [], 0
    with open(DEMO / "genome.fa", "rb") as handle:
        name, length, seq_offset, width = None, 0, 0, None
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


def test_gene_means_follow_the_planted_formula(expression, genes, truth):
    plant = truth["expression"]
    tracks = pd.read_csv(DEMO / "truth" / "reference_tracks.tsv", sep="\t", index_col="gene_id").loc[genes["gene_id"]]
    z = (tracks - tracks.mean()) / tracks.std(ddof=0)
    copies = np.array([plant["genes"][g]["motif_copies"] for g in genes["gene_id"]], dtype=float)
    motif_z = (copies - copies.mean()) / copies.std()
    mu = np.array([plant["genes"][g]["mu"] for g in genes["gene_id"]])
    residual = mu - z.to_numpy() @ np.array(plant["track_weights"]) - plant["motif_weight"] * motif_z
    assert 0.2 < residual.std() < 0.4 and abs(residual.mean()) < 0.1  # the N(0, 0.3^2) gene noise
    assert np.abs(expression.mean(axis=1).to_numpy() - mu).max() < 0.2  # eQTL terms are centred over the 80
    assert 0.2 < expression.sub(expression.mean(axis=1), axis=0).to_numpy().std() < 1.0
    assert tracks.std().min() > 1e-3  # tracks do vary between genes


def test_planted_eqtls_explain_expression_given_vcf_dosages(expression, vcf, truth):
    t = vcf["table"]
    key = t["chrom"] + "_" + t["pos"].astype(str) + "_" + t["ref"] + "_" + t["alts"].map(",".join) + "_b38"
    row_of = dict(zip(key, range(len(t))))
    dose = np.where(vcf["gt"] < 0, np.nan, vcf["gt"] == 1).sum(-1)  # NaN when either allele is missing
    planted, estimated, residuals = [], [], []
    for gene, info in truth["expression"]["genes"].items():
        y = expression.loc[gene].to_numpy() - info["mu"]
        if not info["eqtls"]:
            residuals.append(y)
            continue
        rows = [row_of[e["variant_id"]] for e in info["eqtls"]]
        assert all(len(t["alts"][r]) == 1 and len(t["ref"][r]) == 1 == len(t["alts"][r][0]) for r in rows)
        x = dose[rows].T
        x = np.where(np.isnan(x), np.nanmean(x, 0), x)
        effects = np.array([e["effect"] for e in info["eqtls"]])
        residuals.append(y - (x - x.mean(0)) @ effects)
        design = np.column_stack([np.ones(len(x)), x])
        estimated += list(np.linalg.lstsq(design, y, rcond=None)[0][1:])
        planted += list(effects)
    noise = np.concatenate(residuals)
    assert 0.27 < noise.std() < 0.35 and abs(noise.mean()) < 0.02  # the N(0, 0.3^2) individual noise
    planted, estimated = np.array(planted), np.array(estimated)
    assert len(planted) > 200
    assert np.corrcoef(planted, estimated)[0, 1] > 0.85


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


def test_gwas_has_a_few_strong_causal_genes_and_mostly_null_variants(gwas, genes, truth):
    causal = truth["gwas"]["causal_genes"]
    assert len(causal) == 12
    assert 0.15 < truth["gwas"]["h2_realised"] < 0.25
    located = genes.set_index("gene_id")
    strong = 0
    for c in causal:
        g = located.loc[c["gene_id"]]
        here = gwas[(gwas["chromosome"] == g["chrom"]) & ((gwas["position"] - 1 - g["tss"]).abs() < 2048)]
        strong += here["pvalue"].min() < 1e-6
    assert 2 <= strong <= 8
    assert (gwas["pvalue"] < 1e-6).mean() < 0.05
    assert (gwas["pvalue"] < 0.05).mean() < 0.3
