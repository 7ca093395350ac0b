#!/usr/bin/env python
"""Generate the bundled EnPACT demo data set (genome, genes, VCFs, targets, GWAS, tiny Enformer), deterministically.

Usage: python scripts/make_demo_data.py [--outdir src/enpact/data/demo] [--seed 20261123]
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_SEED = 20261123
DEFAULT_OUTDIR = Path(__file__).resolve().parents[1] / "src" / "enpact" / "data" / "demo"

CHROM_LENGTHS: dict[str, int] = {
    **{f"chr{i}": 300_000 for i in range(1, 7)},
    "chrX": 100_000,
    "chrM": 16_569,
}
GENES_PER_CHROM: dict[str, int] = {**{f"chr{i}": 40 for i in range(1, 7)}, "chrX": 6}
VARIANT_CHROMS: list[str] = [c for c in CHROM_LENGTHS if c != "chrM"]
# 40 TSSs at >= 8 kb spacing need 312 kb, more than a 300 kb chromosome minus 2 x 5 kb margins offers;
# 7 kb still keeps every 4,096 bp window disjoint from its neighbours.
MIN_TSS_GAP = 7_000
TSS_END_MARGIN = 5_000
N_RUN_CLEARANCE = 5_000
N_RUN_CHROMS: list[str] = ["chr2", "chr4", "chrX"]
N_RUN_MAX_LEN = 200
PROMOTER_HALF_BP = 1_000
MOTIF_HALF_BP = 500
MOTIFS: list[str] = ["TATAAA", "GGGCGG", "CACGTG"]
MAX_MOTIF_COPIES = 12

WINDOW_BP = 4_096
N_VCF_INDIVIDUALS = 80
N_GWAS_INDIVIDUALS = 1_000
POPULATION_SIZE = 10_000
RECOMBINATION_RATE = 1e-8
MUTATION_RATE = 2e-8
INDEL_FRACTION = 0.05
MULTIALLELIC_FRACTION = 0.04  # candidates; many fail the "all three alleles seen in the 80" check, leaving ~2 %
MISSING_FRACTION = 0.005
NO_RSID_FRACTION = 0.01

TRACK_NAMES: list[str] = [
    "DNASE:demo_1",
    "DNASE:demo_2",
    "CHIP:H3K4me3:demo_1",
    "CHIP:H3K27ac:demo_1",
    "CHIP:CTCF:demo_1",
    "CAGE:demo_1",
    "CAGE:demo_2",
    "ATAC:demo_1",
]
# The planted EnPACT function: expression = sum_k w_k * (x_k - m_k) / s_k, where x is the log1p of the tiny
# Enformer's central-bin-mean tracks (exactly the elastic net's inputs) and m, s their mean and sd over the genes'
# reference windows. It sets both the between-gene levels and, through each individual's two haplotype windows,
# the between-individual differences.
TRACK_WEIGHTS: list[float] = [1.0, -0.8, 0.0, 0.5, 0.0, 0.0, 0.6, 0.0]
GENE_NOISE_SD = 0.4  # per-gene level not explained by the sequence model (the same for every individual)
# Noise per individual and gene: the planted genetic values vary by ~0.01-0.14 sd within a gene (median ~0.036),
# so 0.05 gives a median cis heritability of about 0.35 over the 80 and a clear signal in a third of the genes.
INDIVIDUAL_NOISE_SD = 0.05
SUBSTANTIAL_H2 = 0.3  # genes whose planted cis heritability in the 80 is at least this have a "substantial" signal
N_CAUSAL_GENES = 6
GWAS_H2 = 0.25
CAUSAL_CHROMS: list[str] = [f"chr{i}" for i in range(1, 7)]  # genes the demo's train/valid/test splits cover
CAUSAL_MIN_H2 = 0.5  # causal genes have a clear planted signal in the 80, so the pipeline can model them
CAUSAL_MIN_DISTANCE = 30_000  # bp between the TSSs of two causal genes on one chromosome
CAUSAL_MAX_CORRELATION = 0.1  # |r| between the genetic values of two causal genes in the GWAS individuals
# relative sqrt-variance shares of the causal genes: fairly even, so that most are detectable in 1,000 individuals
CAUSAL_PROFILE: list[float] = [1.2, 1.1, 1.0, 1.0, 0.9, 0.9]
ALLELE_SWAP_FRACTION = 0.3
TINY_ENFORMER_HPARAMS: dict = dict(
    dim=12, depth=1, heads=1, dim_divisible_by=2, target_length=4, output_heads={"human": 8}, num_downsamples=7
)

TINY_ENFORMER_GAIN = 1.2

BASES = np.frombuffer(b"ACGTN", dtype=np.uint8)
COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}
TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}

# independent random streams per component, so that changing one piece does not reshuffle the others
STREAM_GENES, STREAM_GENOME, STREAM_VARIANTS, STREAM_EXPRESSION, STREAM_GWAS, STREAM_BROKEN = range(1, 7)
STREAM_SECOND_CONTEXT = 7
STREAM_BORZOI = 8
# The Borzoi demo (`enpact run --demo borzoi`): expression planted on the tiny random Borzoi's features, as the
# blood expression is on the tiny Enformer's, so that the model, linearization and TWAS have something to find.
# Two stranded tracks (CAGE, RNA: a minus-strand gene reads their minus-strand mates) and two unstranded ones.
BORZOI_TRACKS: list[str] = ["CNhs10608+", "ENCFF833POA", "ENCFF281BWX+", "GSM2543089"]
BORZOI_TRACK_WEIGHTS: list[float] = [1.0, -0.8, 0.6, 0.5]
SECOND_CONTEXT = "liver"         # the second simulated context over the same individuals (the first: "blood")
SECOND_CONTEXT_GENETIC_SCALE = 0.8   # its genetic values are the first context's, scaled (a correlated tissue)
SECOND_CONTEXT_SKIP_EVERY = 4    # it measures 3 of every 4 genes, so the contexts' loci differ


def rng_for(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """A numpy generator for one component (and optional sub-keys) of the demo data."""
    return np.random.default_rng([seed, stream, *keys])


# ----------------------------------------------------------------------------------------------- genes


def place_tss(length: int, n: int, rng: np.random.Generator, reserved_gap: int | None) -> np.ndarray:
    """Sorted 0-based TSSs >= MIN_TSS_GAP apart and >= TSS_END_MARGIN from both ends; one gap may be widened."""
    gaps = np.full(n - 1, MIN_TSS_GAP, dtype=np.int64)
    if reserved_gap is not None:
        gaps[reserved_gap] = 2 * N_RUN_CLEARANCE + N_RUN_MAX_LEN + 2
    lo, hi = TSS_END_MARGIN, length - TSS_END_MARGIN - 1
    slack = hi - lo - int(gaps.sum())
    if slack < 0:
        raise ValueError(f"{n} genes do not fit on a {length} bp chromosome")
    offsets = np.sort(rng.integers(0, slack + 1, size=n))
    return lo + np.concatenate([[0], np.cumsum(gaps)]) + offsets


def make_gene_layout(seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gene table (one row per gene, genomic order) and the N runs (chrom, start, end; 0-based half-open)."""
    rows, runs = [], []
    number = 0
    for chrom_index, (chrom, n_genes) in enumerate(GENES_PER_CHROM.items()):
        rng = rng_for(seed, STREAM_GENES, chrom_index)
        length = CHROM_LENGTHS[chrom]
        reserved = int(rng.integers(0, n_genes - 1)) if chrom in N_RUN_CHROMS else None
        tss = place_tss(length, n_genes, rng, reserved)
        strands = np.where(rng.random(n_genes) < 0.5, "+", "-")
        body = rng.integers(1_000, 20_001, size=n_genes)
        lnc = rng.random(n_genes) < 0.08
        versions = rng.integers(1, 4, size=n_genes)
        for t, s, b, is_lnc, v in zip(tss, strands, body, lnc, versions):
            number += 1
            if s == "+":
                start1, end1 = int(t) + 1, min(int(t) + int(b), length)
            else:
                start1, end1 = max(1, int(t) + 2 - int(b)), int(t) + 1
            rows.append(
                dict(
                    gene_id=f"ENSGDEMO{number:05d}.{v}",
                    gene_name=f"DMG{number:03d}",
                    gene_type="lncRNA" if is_lnc else "protein_coding",
                    chrom=chrom,
                    strand=s,
                    tss=int(t),
                    start=start1,
                    end=end1,
                    transcript_id=f"ENSTDEMO{number:05d}.{v}",
                    exon_id=f"ENSEDEMO{number:05d}.{v}",
                )
            )
        if reserved is not None:
            run_len = int(rng.integers(50, N_RUN_MAX_LEN + 1))
            first = int(tss[reserved]) + N_RUN_CLEARANCE + 1
            last = int(tss[reserved + 1]) - N_RUN_CLEARANCE - run_len
            start = int(rng.integers(first, last + 1))
            runs.append(dict(chrom=chrom, start=start, end=start + run_len))
    return pd.DataFrame(rows), pd.DataFrame(runs, columns=["chrom", "start", "end"])


def gtf_text(genes: pd.DataFrame) -> str:
    """GTF 2.2 (GENCODE-style attributes): one gene, one transcript and one exon line per gene."""
    lines = [
        "##description: EnPACT synthetic demo annotation (scripts/make_demo_data.py)",
        "##provider: EnPACT demo",
        "##format: gtf",
    ]
    order = genes.assign(_c=genes["chrom"].map(list(CHROM_LENGTHS).index)).sort_values(["_c", "start", "gene_id"])
    for g in order.itertuples():
        gene_attr = f'gene_id "{g.gene_id}"; gene_type "{g.gene_type}"; gene_name "{g.gene_name}";'
        tx_attr = (
            f'gene_id "{g.gene_id}"; transcript_id "{g.transcript_id}"; gene_type "{g.gene_type}"; '
            f'gene_name "{g.gene_name}"; transcript_type "{g.gene_type}"; transcript_name "{g.gene_name}-201";'
        )
        exon_attr = f'{tx_attr} exon_number 1; exon_id "{g.exon_id}";'
        for feature, attr in (("gene", gene_attr), ("transcript", tx_attr), ("exon", exon_attr)):
            lines.append(f"{g.chrom}\tDEMO\t{feature}\t{g.start}\t{g.end}\t.\t{g.strand}\t.\t{attr}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- genome


def background_sequence(length: int, promoter: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Base codes with 20 kb GC isochores (35-47 %), GC-rich promoters and CpG depletion outside promoters."""
    n_blocks = -(-length // 20_000)
    gc = np.repeat(rng.uniform(0.35, 0.47, n_blocks), 20_000)[:length]
    gc = np.where(promoter, 0.60, gc)
    u = rng.random(length)
    at = (1.0 - gc) / 2.0
    codes = np.select([u < at, u < at + gc / 2.0, u < at + gc], [0, 1, 2], default=3).astype(np.uint8)
    is_cpg = (codes[:-1] == 1) & (codes[1:] == 2) & ~promoter[:-1]
    mutate = is_cpg & (rng.random(length - 1) < 0.75)
    on_c = rng.random(length - 1) < 0.5
    codes[np.flatnonzero(mutate & on_c)] = 3  # CG -> TG
    codes[np.flatnonzero(mutate & ~on_c) + 1] = 0  # CG -> CA
    return codes


def encode(seq: str) -> np.ndarray:
    """uint8 codes (A=0, C=1, G=2, T=3, N=4) of an upper-case DNA string."""
    lut = np.full(256, 4, dtype=np.uint8)
    lut[np.frombuffer(b"ACGT", dtype=np.uint8)] = np.arange(4, dtype=np.uint8)
    return lut[np.frombuffer(seq.encode(), dtype=np.uint8)]


def reverse_complement(seq: str) -> str:
    """Reverse complement of an ACGT string."""
    return "".join(COMPLEMENT[b] for b in reversed(seq))


def plant_motifs(codes: np.ndarray, tss: int, strand: str, copies: int, rng: np.random.Generator) -> None:
    """Write `copies` motif instances (gene orientation) into distinct 10 bp slots within +-500 bp of the TSS."""
    slots = rng.choice(2 * MOTIF_HALF_BP // 10, size=copies, replace=False)
    for slot in slots:
        motif = MOTIFS[int(rng.integers(0, len(MOTIFS)))]
        if strand == "-":
            motif = reverse_complement(motif)
        start = tss - MOTIF_HALF_BP + 10 * int(slot) + int(rng.integers(0, 5))
        codes[start : start + len(motif)] = encode(motif)


def make_genome(
    genes: pd.DataFrame, n_runs: pd.DataFrame, seed: int = DEFAULT_SEED
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Sequences (uint8 codes per chromosome) and the planted motif copies per gene (genes' row order)."""
    sequences: dict[str, np.ndarray] = {}
    copies = np.zeros(len(genes), dtype=np.int64)
    for chrom_index, (chrom, length) in enumerate(CHROM_LENGTHS.items()):
        rng = rng_for(seed, STREAM_GENOME, chrom_index)
        here = genes.index[genes["chrom"] == chrom]
        promoter = np.zeros(length, dtype=bool)
        for t in genes.loc[here, "tss"]:
            promoter[max(0, t - PROMOTER_HALF_BP) : t + PROMOTER_HALF_BP + 1] = True
        codes = background_sequence(length, promoter, rng)
        for i in here:
            copies[i] = int(rng.integers(0, MAX_MOTIF_COPIES + 1))
            plant_motifs(codes, int(genes.at[i, "tss"]), str(genes.at[i, "strand"]), int(copies[i]), rng)
        for run in n_runs[n_runs["chrom"] == chrom].itertuples():
            codes[run.start : run.end] = 4
        sequences[chrom] = codes
    return sequences, copies


def write_fasta(sequences: dict[str, np.ndarray], path: Path) -> None:
    """FASTA with 60 bp lines, then its .fai via samtools faidx (pysam)."""
    import pysam

    with open(path, "wb") as out:
        for chrom, codes in sequences.items():
            text = BASES[codes].tobytes()
            out.write(f">{chrom}\n".encode())
            out.write(b"\n".join(text[i : i + 60] for i in range(0, len(text), 60)) + b"\n")
    pysam.faidx(str(path))


# -------------------------------------------------------------------------------------------- variants


@dataclass
class Variants:
    """Records of one VCF (table) and the allele index of every simulated haplotype at each record."""

    table: pd.DataFrame  # chrom, pos0, ref, alt (comma-joined), rsid, kind
    haplotypes: np.ndarray  # (records, 2 * all individuals) int8 allele indexes; VCF individuals first


def simulate_haplotypes(length: int, n_individuals: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """0-based site positions and (sites, 2n) 0/1 haplotypes of one chromosome from msprime."""
    import msprime

    ts = msprime.sim_ancestry(
        samples=n_individuals,
        population_size=POPULATION_SIZE,
        recombination_rate=RECOMBINATION_RATE,
        sequence_length=length,
        ploidy=2,
        random_seed=seed,
    )
    mts = msprime.sim_mutations(
        ts, rate=MUTATION_RATE, random_seed=seed, model=msprime.BinaryMutationModel(), discrete_genome=True
    )
    return mts.sites_position.astype(np.int64), mts.genotype_matrix().astype(np.int8)


def merge_multiallelic(haps: np.ndarray, candidates: np.ndarray, n_vcf_haps: int) -> tuple[np.ndarray, np.ndarray]:
    """Fold site i+1's carriers into allele 2 of candidate site i (in place); returns (kept mask, merged mask)."""
    keep = np.ones(len(haps), dtype=bool)
    merged = np.zeros(len(haps), dtype=bool)
    for i in np.flatnonzero(candidates):
        j = i + 1
        if j >= len(haps) or not keep[i] or merged[i] or candidates[j]:
            continue
        allele = haps[i].copy()
        allele[(haps[i] == 0) & (haps[j] == 1)] = 2
        seen = allele[:n_vcf_haps]
        if (seen == 1).any() and (seen == 2).any() and (seen == 0).any():
            haps[i] = allele
            keep[j] = False
            merged[i] = True
    return keep, merged


def snv_alt(ref: str, rng: np.random.Generator, exclude: str = "") -> str:
    """A random ALT base != ref (transitions twice as likely as each transversion pair)."""
    options = [b for b in "ACGT" if b != ref and b not in exclude]
    weights = np.array([2.0 if TRANSITION[ref] == b else 1.0 for b in options])
    return options[int(rng.choice(len(options), p=weights / weights.sum()))]


def deletion_ref(text: str, p: int, rng: np.random.Generator) -> str | None:
    """REF of a left-aligned 2-6 bp deletion anchored at p (no N, inside the chromosome), or None if none fits."""
    for k in rng.permutation(np.arange(2, 7)):
        span = text[p : p + int(k)]
        # a deletion whose last deleted base equals the anchor could shift left: not normalised
        if len(span) == k and "N" not in span and span[0] != span[-1]:
            return span
    return None


def insertion_alt(base: str, rng: np.random.Generator) -> str:
    """ALT of a left-aligned insertion after `base`: base + 1-5 random bases, the last one differing from base."""
    inserted = list(rng.choice(list("ACGT"), size=int(rng.integers(1, 6))))
    if inserted[-1] == base:
        inserted[-1] = str(rng.choice([b for b in "ACGT" if b != base]))
    return base + "".join(inserted)


def allele_strings(
    chrom_seq: np.ndarray, pos: np.ndarray, kinds: np.ndarray, rng: np.random.Generator
) -> tuple[list[str], list[str], np.ndarray]:
    """REF and ALT strings per site from the genome; deletions that cannot be placed fall back to SNVs."""
    refs, alts = [], []
    kinds = kinds.copy()
    text = BASES[chrom_seq].tobytes().decode()
    for k, p in enumerate(pos):
        base = text[p]
        if kinds[k] == "del":
            span = deletion_ref(text, int(p), rng)
            if span is not None:
                refs.append(span)
                alts.append(base)
                continue
            kinds[k] = "snv"
        if kinds[k] == "ins":
            refs.append(base)
            alts.append(insertion_alt(base, rng))
            continue
        refs.append(base)
        first = snv_alt(base, rng)
        alts.append(first if kinds[k] == "snv" else f"{first},{snv_alt(base, rng, exclude=first)}")
    return refs, alts, kinds


def non_overlapping(pos: np.ndarray, ref_len: np.ndarray) -> np.ndarray:
    """Mask keeping a record only if its REF span starts after the previous kept record's REF span."""
    keep = np.zeros(len(pos), dtype=bool)
    last_end = -1
    for k, (p, n) in enumerate(zip(pos, ref_len)):
        if p >= last_end:
            keep[k] = True
            last_end = p + n
    return keep


def chromosome_variants(chrom: str, chrom_seq: np.ndarray, seed: int, chrom_index: int) -> Variants:
    """Simulated, post-processed variant records of one chromosome."""
    n_all = N_VCF_INDIVIDUALS + N_GWAS_INDIVIDUALS
    n_vcf_haps = 2 * N_VCF_INDIVIDUALS
    pos, haps = simulate_haplotypes(len(chrom_seq), n_all, seed + 1000 * (chrom_index + 1))
    rng = rng_for(seed, STREAM_VARIANTS, chrom_index)
    on_base = chrom_seq[pos] != 4
    pos, haps = pos[on_base], haps[on_base]

    draw = rng.random(len(pos))
    kinds = np.full(len(pos), "snv", dtype=object)
    kinds[draw < INDEL_FRACTION / 2] = "del"
    kinds[(draw >= INDEL_FRACTION / 2) & (draw < INDEL_FRACTION)] = "ins"
    candidates = (draw >= INDEL_FRACTION) & (draw < INDEL_FRACTION + MULTIALLELIC_FRACTION)
    keep, merged = merge_multiallelic(haps, candidates, n_vcf_haps)
    kinds[merged] = "multi"
    pos, haps, kinds = pos[keep], haps[keep], kinds[keep]

    vcf_counts = np.stack([(haps[:, :n_vcf_haps] == a).sum(1) for a in range(3)], axis=1)
    gwas_alt = (haps[:, n_vcf_haps:] == 1).sum(1)
    n_gwas_haps = haps.shape[1] - n_vcf_haps
    biallelic_ok = (vcf_counts[:, 1] > 0) & (vcf_counts[:, 0] > 0) & (gwas_alt > 0) & (gwas_alt < n_gwas_haps)
    multi_ok = (vcf_counts > 0).all(1)
    poly = np.where(kinds == "multi", multi_ok, biallelic_ok)
    pos, haps, kinds = pos[poly], haps[poly], kinds[poly]

    refs, alts, kinds = allele_strings(chrom_seq, pos, kinds, rng)
    keep = non_overlapping(pos, np.array([len(r) for r in refs]))
    table = pd.DataFrame(
        dict(chrom=chrom, pos0=pos, ref=refs, alt=alts, kind=kinds),
    )[keep].reset_index(drop=True)
    return Variants(table=table, haplotypes=haps[keep])


def assign_rsids(table: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
    """Unique random rs numbers, a few records without one ('.')."""
    numbers = 1_000_000 + rng.choice(89_000_000, size=len(table), replace=False)
    ids = pd.Series([f"rs{n}" for n in numbers], index=table.index)
    ids[rng.random(len(table)) < NO_RSID_FRACTION] = "."
    return ids


def make_variants(sequences: dict[str, np.ndarray], seed: int) -> Variants:
    """All VCF records (autosomes and chrX) with their simulated haplotypes, rsids assigned."""
    parts = [chromosome_variants(c, sequences[c], seed, i) for i, c in enumerate(VARIANT_CHROMS)]
    table = pd.concat([p.table for p in parts], ignore_index=True)
    table["rsid"] = assign_rsids(table, rng_for(seed, STREAM_VARIANTS, 99))
    pos1 = (table["pos0"] + 1).astype(str)
    table["variant_id"] = table["chrom"] + "_" + pos1 + "_" + table["ref"] + "_" + table["alt"] + "_b38"
    return Variants(table=table, haplotypes=np.concatenate([p.haplotypes for p in parts]))


def alt_dosage(haps: np.ndarray) -> np.ndarray:
    """(records, individuals) count of allele 1 per individual from (records, 2 * individuals) haplotypes."""
    return (haps == 1).reshape(haps.shape[0], -1, 2).sum(-1).astype(np.float64)


# ------------------------------------------------------------------------------------------------- VCF


def vcf_header(samples: list[str], extra: list[str] | None = None) -> str:
    """VCF 4.2 header with contig lengths for every FASTA chromosome and the GT format line."""
    lines = ["##fileformat=VCFv4.2", '##FILTER=<ID=PASS,Description="All filters passed">']
    lines += [f"##contig=<ID={c},length={n}>" for c, n in CHROM_LENGTHS.items()]
    lines += extra or []
    lines += [
        "##reference=genome.fa",
        "##source=enpact scripts/make_demo_data.py (msprime simulation)",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]),
    ]
    return "\n".join(lines) + "\n"


def genotype_strings(haps: np.ndarray, missing: np.ndarray, sep: str = "|") -> np.ndarray:
    """(records, individuals) GT strings 'a|b' from (records, 2 * individuals) allele indexes; missing -> '.|.'."""
    chars = np.array(["0", "1", "2"])[haps]
    gt = np.char.add(np.char.add(chars[:, 0::2], sep), chars[:, 1::2])
    return np.where(missing, f".{sep}.", gt)


def vcf_lines(table: pd.DataFrame, gts: np.ndarray, info: pd.Series | None = None) -> list[str]:
    """VCF body lines from the record table and its GT string matrix."""
    info = info if info is not None else pd.Series(".", index=table.index)
    fixed = (
        table["chrom"] + "\t" + (table["pos0"] + 1).astype(str) + "\t" + table["rsid"] + "\t" + table["ref"] + "\t"
        + table["alt"] + "\t.\tPASS\t" + info + "\tGT\t"
    )
    return [f + "\t".join(row) for f, row in zip(fixed, gts)]


def write_bgzipped_vcf(text: str, path: Path) -> None:
    """Write text as bgzip (pysam/htslib) and index it with tabix."""
    import pysam

    plain = path.with_suffix("")  # foo.vcf.gz -> foo.vcf
    plain.write_text(text)
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    pysam.tabix_index(str(path), preset="vcf", force=True)


def sample_names(n: int) -> list[str]:
    """IND001, IND002, ..."""
    return [f"IND{i:03d}" for i in range(1, n + 1)]


def missing_mask(n_records: int, seed: int) -> np.ndarray:
    """(records, VCF individuals) mask of calls written as '.|.'."""
    return rng_for(seed, STREAM_VARIANTS, 77).random((n_records, N_VCF_INDIVIDUALS)) < MISSING_FRACTION


def write_genotypes_vcf(variants: Variants, missing: np.ndarray, path: Path) -> None:
    """genotypes.vcf.gz: the first 80 simulated individuals, phased, with the planted missing calls."""
    gts = genotype_strings(variants.haplotypes[:, : 2 * N_VCF_INDIVIDUALS], missing)
    body = vcf_lines(variants.table, gts)
    write_bgzipped_vcf(vcf_header(sample_names(N_VCF_INDIVIDUALS)) + "\n".join(body) + "\n", path)


def broken_records(variants: Variants, genes: pd.DataFrame) -> pd.Index:
    """Row labels of a few records on chr1 inside the windows of its first two genes."""
    first = genes[genes["chrom"] == "chr1"].head(2)
    t = variants.table
    inside = np.zeros(len(t), dtype=bool)
    for tss in first["tss"]:
        inside |= (t["chrom"] == "chr1").to_numpy() & (np.abs(t["pos0"] - tss) < WINDOW_BP // 2).to_numpy()
    return t.index[inside][:10]


def write_broken_vcfs(
    variants: Variants, genes: pd.DataFrame, sequences: dict[str, np.ndarray], outdir: Path, seed: int
) -> None:
    """broken/unphased, broken/ref_mismatch (both invalid) and broken/symbolic (valid, with <DEL> and *)."""
    rng = rng_for(seed, STREAM_BROKEN)
    outdir.mkdir(parents=True, exist_ok=True)
    rows = broken_records(variants, genes)
    table = variants.table.loc[rows].reset_index(drop=True)
    haps = variants.haplotypes[rows, : 2 * N_VCF_INDIVIDUALS]
    no_missing = np.zeros((len(table), N_VCF_INDIVIDUALS), dtype=bool)
    header = vcf_header(sample_names(N_VCF_INDIVIDUALS))
    snv_rows = np.flatnonzero((table["kind"] == "snv").to_numpy())

    gts = genotype_strings(haps, no_missing)
    unphased_row = int(snv_rows[1])
    gts[unphased_row] = genotype_strings(haps[unphased_row : unphased_row + 1], no_missing[:1], sep="/")[0]
    write_bgzipped_vcf(header + "\n".join(vcf_lines(table, gts)) + "\n", outdir / "unphased.vcf.gz")

    bad = table.copy()
    k = int(snv_rows[2])
    bad.at[k, "ref"] = snv_alt(bad.at[k, "ref"], rng, exclude=bad.at[k, "alt"])
    bad_text = header + "\n".join(vcf_lines(bad, genotype_strings(haps, no_missing))) + "\n"
    write_bgzipped_vcf(bad_text, outdir / "ref_mismatch.vcf.gz")

    write_symbolic_vcf(table, haps, sequences["chr1"], outdir / "symbolic.vcf.gz", rng)


def write_symbolic_vcf(
    table: pd.DataFrame, haps: np.ndarray, chr1: np.ndarray, path: Path, rng: np.random.Generator
) -> None:
    """Normal SNVs plus one <DEL> record (SVTYPE/END) and one 'X,*' record whose '*' haplotypes must be skipped."""
    snv = (table["kind"] == "snv").to_numpy()
    t, h = table[snv].reset_index(drop=True), haps[snv].copy()
    info = pd.Series(".", index=t.index)
    star = 2
    carriers = np.flatnonzero(h[star] == 1)
    h[star, carriers[: max(1, len(carriers) // 2)]] = 2
    t.at[star, "alt"] = f"{t.at[star, 'alt']},*"
    # the <DEL> sits halfway between two SNVs, its END before the next record
    gap = np.diff(t["pos0"].to_numpy())
    k = int(np.argmax(gap))
    del_pos0 = int(t.at[k, "pos0"]) + 1 + int(rng.integers(0, max(1, gap[k] // 4)))
    del_end1 = del_pos0 + 1 + min(50, (int(t.at[k + 1, "pos0"]) - del_pos0) // 2)
    del_row = pd.DataFrame(
        dict(chrom="chr1", pos0=[del_pos0], ref=[BASES[chr1[del_pos0 : del_pos0 + 1]].tobytes().decode()],
             alt=["<DEL>"], kind=["symbolic"], rsid=["."])
    )
    del_haps = (rng.random((1, h.shape[1])) < 0.15).astype(np.int8)
    t = pd.concat([t.iloc[: k + 1], del_row, t.iloc[k + 1 :]], ignore_index=True)
    h = np.concatenate([h[: k + 1], del_haps, h[k + 1 :]])
    del_info = pd.Series([f"SVTYPE=DEL;END={del_end1}"])
    info = pd.concat([info.iloc[: k + 1], del_info, info.iloc[k + 1 :]], ignore_index=True)
    extra = [
        '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">',
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End position of the variant">',
        '##ALT=<ID=DEL,Description="Deletion">',
    ]
    gts = genotype_strings(h, np.zeros((len(t), h.shape[1] // 2), dtype=bool))
    text = vcf_header(sample_names(N_VCF_INDIVIDUALS), extra) + "\n".join(vcf_lines(t, gts, info)) + "\n"
    write_bgzipped_vcf(text, path)


# ------------------------------------------------------------------------------------------ tiny Enformer


def spread_initial_weights(model, gain: float, seed: int) -> None:
    """Redraw conv/linear weights as N(0, gain^2 / fan_in) with zero biases (attention-pool logits kept)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, (torch.nn.Conv1d, torch.nn.Linear)) and "to_attn_logits" not in name:
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * gain / fan_in**0.5)
                if module.bias is not None:
                    module.bias.zero_()


def make_tiny_enformer(outdir: Path, seed: int):
    """Save a random tiny Enformer checkpoint, its sidecar and tracks.tsv; return the model reloaded from disk."""
    import torch
    from enformer_pytorch import Enformer

    torch.manual_seed(seed)
    model = Enformer.from_hparams(**TINY_ENFORMER_HPARAMS)
    # With the library's default init, six conv stages shrink sequence signal ~1e5-fold: every window gives the
    # same output to 6 digits. Variance-preserving weights keep tracks varying across genes and SNVs visible.
    spread_initial_weights(model, TINY_ENFORMER_GAIN, seed)
    model.save_pretrained(str(outdir), safe_serialization=False)
    # the checkpoint does not record its input length; enpact's Enformer predictor reads it from this sidecar
    (outdir / "enpact_predictor.json").write_text(json.dumps({"window_bp": WINDOW_BP}))
    pd.DataFrame(dict(index=range(len(TRACK_NAMES)), name=TRACK_NAMES)).to_csv(
        outdir / "tracks.tsv", sep="\t", index=False, lineterminator="\n"
    )
    reloaded = Enformer.from_pretrained(str(outdir))
    reloaded.eval()
    return reloaded


def window_codes(chrom_seq: np.ndarray, tss: int) -> np.ndarray:
    """uint8 codes of the WINDOW_BP window centred on tss (start tss - 2048), N-padded past the ends."""
    start = tss - WINDOW_BP // 2
    idx = np.arange(start, start + WINDOW_BP)
    inside = (idx >= 0) & (idx < len(chrom_seq))
    out = np.full(WINDOW_BP, 4, dtype=np.uint8)
    out[inside] = chrom_seq[idx[inside]]
    return out


def reference_tracks(model, sequences: dict[str, np.ndarray], genes: pd.DataFrame) -> np.ndarray:
    """(genes, tracks) mean of the 4 output bins of model(one-hot window, head='human'), one gene at a time."""
    import torch

    one_hot = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), dtype=np.float32)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # fixed reduction order, so the file is byte-stable on one machine
    out = np.zeros((len(genes), len(TRACK_NAMES)), dtype=np.float32)
    try:
        with torch.no_grad():
            for i, g in enumerate(genes.itertuples()):
                x = torch.from_numpy(one_hot[window_codes(sequences[g.chrom], g.tss)][None])
                out[i] = model(x, head="human")[0].mean(0).numpy()
    finally:
        torch.set_num_threads(threads)
    return out


# ---------------------------------------------------------------------------------------------- targets


@dataclass
class HaplotypeFeatures:
    """One gene's EnPACT model inputs per distinct haplotype window and which window each haplotype has."""

    inputs: np.ndarray  # (distinct windows, tracks) float32 log1p(max(mean of 4 central bins, 0)); row 0: reference
    haplotype_window: np.ndarray  # (individuals, 2) int32 row of `inputs` per haplotype, VCF individuals first


def haplotype_features(
    outdir: Path, genes: pd.DataFrame, haplotypes: np.ndarray, table: pd.DataFrame, threads: int = 1
) -> list[HaplotypeFeatures]:
    """Per gene, the elastic net's inputs for every haplotype window of all simulated individuals (no missing calls).

    Built with enpact's own code, so that the planted function is exactly in the model class: the haplotype
    windows of enpact.haplotypes (via enpact.predict.predict_loci, distinct windows predicted once), the tiny
    Enformer through enpact's Enformer predictor (4 central bins averaged, all tracks, fp32 on CPU) and the
    feature transform of enpact's elastic net. The genotypes go through a temporary VCF of all individuals.
    One torch thread by default, so that the bytes of the outputs are stable on one machine.
    """
    import tempfile

    import torch

    from enpact.genome import Genome
    from enpact.models.elastic_net import elastic_net_inputs
    from enpact.predict import predict_loci
    from enpact.predictors.enformer import EnformerPredictor
    from enpact.variants import VcfReader

    n_all = haplotypes.shape[1] // 2
    loci = pd.DataFrame(dict(locus_id=genes["gene_id"].to_numpy(), chrom=genes["chrom"].to_numpy(),
                             center=genes["tss"].to_numpy(np.int64)))
    predictor = EnformerPredictor(weights=str(outdir / "enformer_tiny"), device="cpu", precision="fp32",
                                  batch_size=32, bins=4, aggregate="mean")
    out: list[HaplotypeFeatures | None] = [None] * len(genes)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "all_individuals.vcf.gz"
            gts = genotype_strings(haplotypes, np.zeros((len(table), n_all), dtype=bool))
            write_bgzipped_vcf(vcf_header(sample_names(n_all)) + "\n".join(vcf_lines(table, gts)) + "\n", path)
            vcf = VcfReader(path)
            for item in predict_loci(predictor, Genome(outdir / "genome.fa"), loci, vcf, progress=False):
                out[item.locus_index] = HaplotypeFeatures(elastic_net_inputs(item.features),
                                                          item.windows.haplotype_window.astype(np.int32))
    finally:
        torch.set_num_threads(before)
    return out  # type: ignore[return-value]


def standardisation(features: list[HaplotypeFeatures]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population sd over the genes of each track's model input in the reference window."""
    reference = np.stack([f.inputs[0] for f in features]).astype(np.float64)
    return reference.mean(0), reference.std(0)


def planted_values(features: list[HaplotypeFeatures], mean: np.ndarray, sd: np.ndarray,
                   weights: list[float] | np.ndarray = TRACK_WEIGHTS) -> tuple[np.ndarray, np.ndarray]:
    """(genes,) planted value of the reference window and (genes, individuals) planted genetic values: the mean over
    an individual's two haplotypes of sum_k w_k (x_k - m_k) / s_k, x the model inputs of the haplotype's window."""
    w = np.asarray(weights, dtype=np.float64)
    reference = np.empty(len(features))
    genetic = np.empty((len(features), features[0].haplotype_window.shape[0]))
    for g, f in enumerate(features):
        per_window = ((f.inputs.astype(np.float64) - mean) / sd) @ w
        reference[g] = per_window[0]
        genetic[g] = per_window[f.haplotype_window].mean(axis=1)
    return reference, genetic


def simulate_expression(genetic80: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(genes, 80) observed values = planted genetic value + gene offset N(0, GENE_NOISE_SD^2) + noise
    N(0, INDIVIDUAL_NOISE_SD^2) per individual, and the gene offsets."""
    rng = rng_for(seed, STREAM_EXPRESSION)
    offset = rng.normal(0.0, GENE_NOISE_SD, len(genetic80))
    values = genetic80 + offset[:, None] + rng.normal(0.0, INDIVIDUAL_NOISE_SD, genetic80.shape)
    return values, offset


def cis_heritability(genetic: np.ndarray, noise_sd: float = INDIVIDUAL_NOISE_SD) -> np.ndarray:
    """Per gene var(genetic value) / (var(genetic value) + noise variance) over the given individuals."""
    variance = genetic.var(axis=1)
    return variance / (variance + noise_sd**2)


# ------------------------------------------------------------------------------------------------- GWAS


def choose_causal(
    genes: pd.DataFrame, genetic_gwas: np.ndarray, h2_80: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indexes of the causal genes and their effects (gamma per unit of planted genetic value).

    Eligible: genes on the chromosomes the demo's splits cover, with a clear planted signal in the 80
    (cis h2 >= CAUSAL_MIN_H2) and a genetic sd in the GWAS individuals at least the median. Picked at random,
    each at least CAUSAL_MIN_DISTANCE from the others on its chromosome and with genetic values correlated at
    most CAUSAL_MAX_CORRELATION with theirs, so that two causal genes neither mask nor stand in for each other.
    Effects: random signs, sizes from CAUSAL_PROFILE (as sd of the gene's contribution to the trait), scaled so
    that the genetic variance of the trait is GWAS_H2.
    """
    sd = genetic_gwas.std(1)
    autosomal = genes["chrom"].isin(CAUSAL_CHROMS).to_numpy()
    eligible = np.flatnonzero(autosomal & (h2_80 >= CAUSAL_MIN_H2) & (sd >= np.median(sd[autosomal])))
    correlation = np.corrcoef(genetic_gwas[eligible])
    position = {int(i): k for k, i in enumerate(eligible)}
    chrom, tss = genes["chrom"].to_numpy(), genes["tss"].to_numpy()
    chosen: list[int] = []
    for i in rng.permutation(eligible).tolist():
        if all((chrom[i] != chrom[c] or abs(int(tss[i]) - int(tss[c])) >= CAUSAL_MIN_DISTANCE)
               and abs(correlation[position[i], position[c]]) < CAUSAL_MAX_CORRELATION for c in chosen):
            chosen.append(i)
        if len(chosen) == N_CAUSAL_GENES:
            break
    if len(chosen) < N_CAUSAL_GENES:
        raise ValueError(f"only {len(chosen)} causal genes could be chosen")
    causal = np.sort(np.array(chosen))
    profile = rng.permutation(np.array(CAUSAL_PROFILE))
    signs = np.where(rng.random(N_CAUSAL_GENES) < 0.5, -1.0, 1.0)
    gammas = signs * profile / sd[causal]
    g = gammas @ (genetic_gwas[causal] - genetic_gwas[causal].mean(1, keepdims=True))
    return causal, gammas * np.sqrt(GWAS_H2 / g.var())


def simulate_trait(genetic_gwas: np.ndarray, causal: np.ndarray, gammas: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Trait y = sum over causal genes of gamma_g * (genetic value - cohort mean) + N(0, 1 - GWAS_H2), and its
    genetic part."""
    centred = genetic_gwas[causal] - genetic_gwas[causal].mean(1, keepdims=True)
    g = gammas @ centred
    return g + rng.normal(0.0, np.sqrt(1 - GWAS_H2), genetic_gwas.shape[1]), g


def marginal_regression(dosage: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-variant OLS slope of y on dosage (with intercept) and its standard error."""
    xc = dosage - dosage.mean(1, keepdims=True)
    yc = y - y.mean()
    sxx = (xc**2).sum(1)
    beta = xc @ yc / sxx
    rss = (yc**2).sum() - beta**2 * sxx
    return beta, np.sqrt(rss / (len(y) - 2) / sxx)


def gwas_table(table: pd.DataFrame, dosage: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Summary statistics of every biallelic record, ~30 % reported with effect allele = REF."""
    from scipy.stats import norm

    beta, se = marginal_regression(dosage, y)
    z = beta / se
    freq = dosage.mean(1) / 2
    swap = rng.random(len(table)) < ALLELE_SWAP_FRACTION
    return pd.DataFrame(
        dict(
            variant_id=table["variant_id"].to_numpy(),
            rsid=table["rsid"].to_numpy(),
            chromosome=table["chrom"].to_numpy(),
            position=(table["pos0"] + 1).to_numpy(),
            effect_allele=np.where(swap, table["ref"], table["alt"]),
            non_effect_allele=np.where(swap, table["alt"], table["ref"]),
            frequency=np.where(swap, 1 - freq, freq),
            effect_size=np.where(swap, -beta, beta),
            standard_error=se,
            zscore=np.where(swap, -z, z),
            pvalue=2 * norm.sf(np.abs(z)),
            sample_size=len(y),
        )
    )


# ----------------------------------------------------------------------------------------------- writing


def write_gzip_text(text: str, path: Path) -> None:
    """gzip without timestamp or file name, so the bytes depend on the content only."""
    path.write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))


def tsv_text(df: pd.DataFrame) -> str:
    """Tab-separated text with 6 significant digits for floats."""
    return df.to_csv(sep="\t", index=False, float_format="%.6g", lineterminator="\n")


def write_second_context(outdir: Path, seed: int) -> None:
    """contexts/ and contexts.csv: a second simulated dataset over the same 80 individuals (scaled planted
    genetic values, its own gene offsets and noise, 3 of every 4 genes) next to expression.tsv as the first."""
    genetic = pd.read_csv(outdir / "truth" / "genetic_expression.tsv", sep="\t", index_col=0)
    keep = np.arange(len(genetic)) % SECOND_CONTEXT_SKIP_EVERY != 0
    genetic = genetic[keep]
    rng = rng_for(seed, STREAM_SECOND_CONTEXT)
    offset = rng.normal(0.0, GENE_NOISE_SD, len(genetic))
    values = (SECOND_CONTEXT_GENETIC_SCALE * genetic.to_numpy() + offset[:, None]
              + rng.normal(0.0, INDIVIDUAL_NOISE_SD, genetic.shape))
    (outdir / "contexts").mkdir(exist_ok=True)
    table = pd.concat([pd.DataFrame({"NAME": genetic.index}), pd.DataFrame(values, columns=genetic.columns)], axis=1)
    (outdir / "contexts" / f"expression_{SECOND_CONTEXT}.tsv").write_text(tsv_text(table))
    (outdir / "contexts.csv").write_text(
        f"context,expression\nblood,expression.tsv\n{SECOND_CONTEXT},contexts/expression_{SECOND_CONTEXT}.tsv\n")


def write_borzoi_demo(outdir: Path, seed: int) -> None:
    """borzoi/expression.tsv and borzoi/planted.json: the 80 individuals' expression planted on the tiny random
    Borzoi (`enpact demo-weights borzoi`, written to outdir/borzoi_tiny if absent) as expression.tsv is on the
    tiny Enformer: value_gj = G_gj + gene offset + noise, G_gj the mean over j's two haplotype windows (genotypes.vcf.gz,
    missing calls as reference) of sum_k w_k (x_k - m_k) / s_k over BORZOI_TRACKS, x the elastic net's inputs.
    Built with enpact's own windows, Borzoi predictor (strand from genes.tsv) and feature transform; one torch
    thread, so that the bytes are stable on one machine."""
    import torch

    from enpact.genome import Genome
    from enpact.models.elastic_net import elastic_net_inputs
    from enpact.predict import predict_loci
    from enpact.predictors.borzoi import BorzoiPredictor, write_tiny_checkpoint
    from enpact.variants import VcfReader

    genes = pd.read_csv(outdir / "genes.tsv", sep="\t")
    loci = pd.DataFrame(dict(locus_id=genes["gene_id"], chrom=genes["chrom"], center=genes["tss"].astype(np.int64),
                             strand=genes["strand"]))
    weights = write_tiny_checkpoint(outdir / "borzoi_tiny")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        predictor = BorzoiPredictor(weights=str(weights), device="cpu", batch_size=16, tracks=",".join(BORZOI_TRACKS))
        vcf = VcfReader(outdir / "genotypes.vcf.gz")
        items = sorted(predict_loci(predictor, Genome(outdir / "genome.fa"), loci, vcf, progress=False),
                       key=lambda item: item.locus_index)
    finally:
        torch.set_num_threads(before)
    inputs = [elastic_net_inputs(item.features) for item in items]          # (distinct windows, tracks) per gene
    reference = np.stack([x[0] for x in inputs])                            # row 0: the reference window
    mean, sd = reference.mean(axis=0), reference.std(axis=0)
    w = np.asarray(BORZOI_TRACK_WEIGHTS)
    genetic = np.stack([(((x - mean) / sd) @ w)[item.windows.haplotype_window].mean(axis=1)
                        for x, item in zip(inputs, items)])                 # (genes, 80)
    rng = rng_for(seed, STREAM_BORZOI)
    offset = rng.normal(0.0, GENE_NOISE_SD, len(genes))
    values = genetic + offset[:, None] + rng.normal(0.0, INDIVIDUAL_NOISE_SD, genetic.shape)
    (outdir / "borzoi").mkdir(exist_ok=True)
    names = sample_names(N_VCF_INDIVIDUALS)
    table = pd.concat([pd.DataFrame({"NAME": genes["gene_id"]}), pd.DataFrame(values, columns=names)], axis=1)
    (outdir / "borzoi" / "expression.tsv").write_text(tsv_text(table))
    planted = dict(seed=seed, weights=json.loads((weights / "enpact_predictor.json").read_text()),
                   model="value_gj = G_gj + gene_offset_g + N(0, individual_noise_sd^2); G_gj = mean over the two "
                   "haplotypes h of individual j of sum_k track_weights_k * (x_ghk - input_mean_k) / input_sd_k; "
                   "x_gh = log1p(max(mean of the 4 central 32 bp bins of the tiny Borzoi on haplotype h's window of "
                   "gene g, 0)), a stranded track read on the gene's strand",
                   track_names=BORZOI_TRACKS, track_weights=BORZOI_TRACK_WEIGHTS, input_mean=mean.tolist(),
                   input_sd=sd.tolist(), gene_noise_sd=GENE_NOISE_SD, individual_noise_sd=INDIVIDUAL_NOISE_SD,
                   genetic_sd_median=float(np.median(genetic.std(axis=1))),
                   distinct_windows=int(sum(len(x) for x in inputs)))
    (outdir / "borzoi" / "planted.json").write_text(json.dumps(planted, indent=1) + "\n")


def planted_truth(
    seed: int, genes: pd.DataFrame, motif_copies: np.ndarray, mean: np.ndarray, sd: np.ndarray,
    reference: np.ndarray, offset: np.ndarray, causal: np.ndarray, gammas: np.ndarray, h2: float,
    genetic_gwas: np.ndarray,
) -> dict:
    """The JSON-able planted truth of the expression and GWAS simulations."""
    per_gene = {
        g.gene_id: dict(motif_copies=int(motif_copies[i]), reference_value=float(reference[i]),
                        gene_offset=float(offset[i]))
        for i, g in enumerate(genes.itertuples())
    }
    centred = genetic_gwas - genetic_gwas.mean(1, keepdims=True)
    return dict(
        seed=seed,
        expression=dict(
            model="value_gj = G_gj + gene_offset_g + N(0, individual_noise_sd^2); G_gj = mean over the two "
            "haplotypes h of individual j of sum_k track_weights_k * (x_ghk - input_mean_k) / input_sd_k; "
            "x_gh = log1p(max(mean of the 4 central bins of the tiny Enformer on haplotype h's window of gene g, 0))",
            track_names=TRACK_NAMES,
            track_weights=TRACK_WEIGHTS,
            input_mean=mean.tolist(),
            input_sd=sd.tolist(),
            gene_noise_sd=GENE_NOISE_SD,
            individual_noise_sd=INDIVIDUAL_NOISE_SD,
            substantial_h2=SUBSTANTIAL_H2,
            motifs=MOTIFS,
            genes=per_gene,
        ),
        gwas=dict(
            model="y_j = sum over causal genes g of gamma_g * (G_gj - mean over the GWAS individuals of G_g) + "
            "N(0, 1 - h2_target); G_gj as for expression, on the GWAS individuals' haplotypes",
            sample_size=N_GWAS_INDIVIDUALS,
            h2_target=GWAS_H2,
            h2_realised=h2,
            causal_genes=[
                dict(gene_id=genes.at[c, "gene_id"], gene_name=genes.at[c, "gene_name"], gamma=float(gam),
                     genetic_variance=float(np.var(gam * centred[c])))
                for c, gam in zip(causal, gammas)
            ],
        ),
    )


def write_readme(outdir: Path, stats: dict) -> None:
    """The data dictionary (README.md) of the demo directory, with the counts of this build."""
    (outdir / "README.md").write_text(README_TEMPLATE.format(**stats))


def build(outdir: Path, seed: int) -> dict:
    """Generate every demo file under outdir; returns summary counts."""
    outdir.mkdir(parents=True, exist_ok=True)
    truth_dir = outdir / "truth"
    truth_dir.mkdir(exist_ok=True)
    genes, n_runs = make_gene_layout(seed)
    sequences, motif_copies = make_genome(genes, n_runs, seed)
    write_fasta(sequences, outdir / "genome.fa")
    (outdir / "genes.gtf").write_text(gtf_text(genes))
    genes[["gene_id", "gene_name", "gene_type", "chrom", "strand", "tss"]].to_csv(
        outdir / "genes.tsv", sep="\t", index=False, lineterminator="\n"
    )
    log.info("genome and %d genes written", len(genes))

    variants = make_variants(sequences, seed)
    table = variants.table
    missing = missing_mask(len(table), seed)
    write_genotypes_vcf(variants, missing, outdir / "genotypes.vcf.gz")
    write_broken_vcfs(variants, genes, sequences, outdir / "broken", seed)
    log.info("%d VCF records written", len(table))

    model = make_tiny_enformer(outdir / "enformer_tiny", seed)
    tracks = reference_tracks(model, sequences, genes)
    pd.concat([genes[["gene_id"]], pd.DataFrame(tracks, columns=TRACK_NAMES)], axis=1).to_csv(
        truth_dir / "reference_tracks.tsv", sep="\t", index=False, float_format="%.9g", lineterminator="\n"
    )
    log.info("reference tracks computed with the tiny Enformer")

    started = time.perf_counter()
    features = haplotype_features(outdir, genes, variants.haplotypes, table)
    n_windows = np.array([len(f.inputs) for f in features])
    log.info("tiny Enformer on %d distinct haplotype windows of %d individuals in %.0f s", int(n_windows.sum()),
             N_VCF_INDIVIDUALS + N_GWAS_INDIVIDUALS, time.perf_counter() - started)
    mean, sd = standardisation(features)
    reference, genetic = planted_values(features, mean, sd)
    genetic80, genetic_gwas = genetic[:, :N_VCF_INDIVIDUALS], genetic[:, N_VCF_INDIVIDUALS:]
    values, offset = simulate_expression(genetic80, seed)
    names = sample_names(N_VCF_INDIVIDUALS)
    ids = genes[["gene_id"]].rename(columns={"gene_id": "NAME"})
    (outdir / "expression.tsv").write_text(tsv_text(pd.concat([ids, pd.DataFrame(values, columns=names)], axis=1)))
    (truth_dir / "genetic_expression.tsv").write_text(
        tsv_text(pd.concat([ids, pd.DataFrame(genetic80, columns=names)], axis=1)))

    h2_80 = cis_heritability(genetic80)
    rng = rng_for(seed, STREAM_GWAS)
    causal, gammas = choose_causal(genes, genetic_gwas, h2_80, rng)
    y, g = simulate_trait(genetic_gwas, causal, gammas, rng)
    biallelic = (table["kind"] != "multi").to_numpy()
    dose_gwas = alt_dosage(variants.haplotypes)[:, N_VCF_INDIVIDUALS:]
    gwas = gwas_table(table[biallelic].reset_index(drop=True), dose_gwas[biallelic], y, rng)
    write_gzip_text(tsv_text(gwas), outdir / "gwas.tsv.gz")

    effect = np.zeros(len(genes))
    effect[causal] = gammas
    (truth_dir / "causal_genes.tsv").write_text(tsv_text(pd.DataFrame(dict(gene_id=genes["gene_id"], effect=effect))))
    signal = pd.DataFrame(dict(
        gene_id=genes["gene_id"], gene_name=genes["gene_name"], chrom=genes["chrom"], reference_value=reference,
        gene_offset=offset, genetic_sd=genetic80.std(1), noise_sd=INDIVIDUAL_NOISE_SD, cis_h2=h2_80,
        genetic_sd_gwas=genetic_gwas.std(1), haplotype_windows=n_windows,
    ))
    (truth_dir / "gene_signal.tsv").write_text(tsv_text(signal))
    truth = planted_truth(seed, genes, motif_copies, mean, sd, reference, offset, causal, gammas,
                          float(g.var() / y.var()), genetic_gwas)
    (truth_dir / "planted.json").write_text(json.dumps(truth, indent=1) + "\n")
    write_second_context(outdir, seed)
    write_borzoi_demo(outdir, seed)

    stats = summary_counts(genes, table, missing, gwas, n_runs, signal, causal) | dict(
        seed=seed, weights=TRACK_WEIGHTS, h2_realised=f"{truth['gwas']['h2_realised']:.3f}")
    write_readme(outdir, stats)
    return stats


def summary_counts(genes: pd.DataFrame, table: pd.DataFrame, missing: np.ndarray, gwas: pd.DataFrame,
                   n_runs: pd.DataFrame, signal: pd.DataFrame, causal: np.ndarray) -> dict:
    """Counts quoted in the README and the log."""
    pos, chrom = table["pos0"].to_numpy(), table["chrom"].to_numpy()
    per_window = [
        int(((chrom == g.chrom) & (pos >= g.tss - WINDOW_BP // 2) & (pos < g.tss + WINDOW_BP // 2)).sum())
        for g in genes.itertuples()
    ]
    sd = signal["genetic_sd"]
    return dict(
        n_genes=len(genes),
        n_lnc=int((genes["gene_type"] == "lncRNA").sum()),
        n_records=len(table),
        n_snv=int((table["kind"] == "snv").sum()),
        n_indel=int(table["kind"].isin(["ins", "del"]).sum()),
        n_multi=int((table["kind"] == "multi").sum()),
        n_missing=int(missing.sum()),
        n_no_rsid=int((table["rsid"] == ".").sum()),
        sites_per_window=f"{np.mean(per_window):.1f}",
        n_gwas=len(gwas),
        n_gwas_hits=int((gwas["pvalue"] < 1e-6).sum()),
        n_swapped=int((gwas["effect_allele"] == gwas["variant_id"].str.split("_").str[2]).sum()),
        n_runs=len(n_runs),
        n_windows=int(signal["haplotype_windows"].sum()),
        windows_median=int(signal["haplotype_windows"].median()),
        windows_max=int(signal["haplotype_windows"].max()),
        between_gene_sd=f"{signal['reference_value'].std(ddof=0):.2f}",
        genetic_sd_q=", ".join(f"{q:.3f}" for q in np.quantile(sd, [0.1, 0.5, 0.9])),
        h2_median=f"{signal['cis_h2'].median():.2f}",
        n_substantial=int((signal["cis_h2"] >= SUBSTANTIAL_H2).sum()),
        n_causal=len(causal),
        causal_names=", ".join(genes["gene_name"].iloc[causal]),
    )


README_TEMPLATE = """\
# EnPACT demo data

Small synthetic data set for the quick start, the tutorials and the end-to-end tests. Everything here is
generated by `scripts/make_demo_data.py` (fixed seeds, byte-identical on re-runs on the same machine). Regenerate with

```
python scripts/make_demo_data.py --outdir src/enpact/data/demo
```

(`make demo-data` does the same in the project's virtual environment; about 20 s on 2 cores, most of it the tiny
Enformer on the haplotype windows of 1,080 individuals.)

Nothing here is real data: sequences, genes, individuals and phenotypes are simulated. Coordinates are
"b38"-labelled only so that identifiers follow the usual `chrom_pos_ref_alt_b38` convention.

The data carry a planted truth that the pipeline is expected to recover: expression differs between individuals
because of the tiny Enformer's features of their haplotype windows (a planted function in EnPACT's own model
class), and the GWAS trait is driven by the genetic expression of a few causal genes (`truth/causal_genes.tsv`).

## What the pipeline recovers (this build)

`enpact run` with no parameter file (`make demo`): about 17 s wall time on an idle 2-core machine after set-up
(`time .venv/bin/enpact -q run --outdir /tmp/x --no-progress`: 17.1 s, 2026-11-26: 4,081 predictor passes, each
distinct window once over the 80 individuals; 24 s earlier that day with deduplication per sample chunk; on a
machine where other jobs compete for the two cores it took up to 4 minutes), and:

- EnPACT model (elastic net, train chr1-chr4): Pearson r 0.94 on the held-out chr5 and 0.965 on chr6; the best
  single track reaches 0.82 and 0.79.
- Personalized predictions against observed values across the 80 individuals: median r 0.60 over the 240
  genes of chr1-chr6, 0.84 over the 130 of them with planted cis heritability >= 0.3 (0.998 against their
  planted genetic values) and 0.23 over the 52 with less than 0.1; 219 genes correlate significantly
  positively, 1 is strongly negative.
- Linearization: 227 of 240 genes kept.
- TWAS of the GWAS: 227 genes tested. Bonferroni: 10 hits, 5 of the 6 causal genes (recall 0.83, precision
  0.50); FDR < 0.05: 22 hits, all 6 causal genes (precision 0.27); every causal gene found has the sign of its
  planted effect. The genomic inflation on the QQ plot is 1.91: every non-causal hit lies on a chromosome with
  a causal gene (3 of the 5 Bonferroni ones within 15 kb of it), since LD in the simulated population reaches
  about 100 kb and the TWAS tests each gene marginally. The report's section "Planted truth" states these
  numbers (also in `report/summary.json` under `truth`).

## Files

| file | format | contents |
|---|---|---|
| `genome.fa`, `genome.fa.fai` | FASTA, 60 bp lines, upper case; samtools index | `chr1`..`chr6` (300,000 bp each), `chrX` (100,000 bp), `chrM` (16,569 bp) |
| `genes.gtf` | GTF 2.2, GENCODE-style attributes | one `gene`, one `transcript`, one `exon` line per gene |
| `genes.tsv` | TSV with header | `gene_id gene_name gene_type chrom strand tss` |
| `genotypes.vcf.gz` (+ `.tbi`) | VCF 4.2, bgzip + tabix | 80 individuals `IND001`..`IND080`, phased GT only |
| `broken/*.vcf.gz` (+ `.tbi`) | VCF 4.2, bgzip + tabix | small inputs for error handling (see below) |
| `expression.tsv` | PredictDB expression layout, TSV | header `NAME IND001 .. IND080`, one row per gene id |
| `contexts.csv`, `contexts/expression_liver.tsv` | CSV sample sheet; PredictDB expression layout | two contexts for `enpact run --demo contexts`: blood (`expression.tsv`) and a simulated liver dataset of the same 80 individuals (planted genetic values x 0.8, its own gene offsets and noise, 3 of every 4 genes) |
| `borzoi/expression.tsv`, `borzoi/planted.json` | PredictDB expression layout; JSON | for `enpact run --demo borzoi`: the 80 individuals' expression planted on the tiny random Borzoi's features (4 tracks, two of them stranded, read on each gene's strand), like `expression.tsv` on the tiny Enformer's; the Borzoi itself (`borzoi_tiny/`, ~130 MB, not in git) is written by `enpact demo-weights borzoi` |
| `gwas.tsv.gz` | gzip TSV | GWAS summary statistics of a simulated trait in 1,000 other individuals |
| `enformer_tiny/` | enformer-pytorch checkpoint | `config.json`, `pytorch_model.bin`, `enpact_predictor.json`, `tracks.tsv` |
| `truth/planted.json` | JSON | planted parameters of the expression and GWAS simulations |
| `truth/causal_genes.tsv` | TSV | `gene_id effect`: the planted effect of each gene on the GWAS trait (0: not causal) |
| `truth/gene_signal.tsv` | TSV | per gene: planted reference value, gene offset, genetic sd, cis heritability, ... |
| `truth/genetic_expression.tsv` | TSV, layout of `expression.tsv` | planted genetic values of the 80 individuals |
| `truth/reference_tracks.tsv` | TSV | tiny-Enformer reference features per gene (mean of 4 bins) |

### Genome (`genome.fa`)
Random sequence in 20 kb GC isochores (35-47 % GC) with CpG depletion, GC-rich promoters (+-1 kb around each TSS,
60 % GC, CpG kept), and {n_runs} short N runs (50-200 bp), each more than 5 kb from every TSS. Near each TSS
(+-500 bp) a gene-specific number (0..12, `truth/planted.json: motif_copies`) of copies of `TATAAA`, `GGGCGG`
and `CACGTG`, in the gene's orientation, so motif density varies across genes. `chrM` has no genes and no variants.

### Genes (`genes.gtf`, `genes.tsv`)
{n_genes} genes: 40 per autosome and 6 on chrX, both strands, {n_lnc} `lncRNA` and the rest `protein_coding`.
Ids are versioned (`ENSGDEMO00001.1`), names `DMG001`... TSSs are at least 7 kb apart (8 kb does not fit 40
genes on 300 kb with 5 kb end margins; 7 kb still keeps 4,096 bp windows disjoint) and at least 5 kb from
chromosome ends. `tss` in `genes.tsv` is 0-based: the GTF `start - 1` on the + strand, the GTF `end - 1` on the
- strand. One single-exon transcript per gene spans the gene.

### Genotypes (`genotypes.vcf.gz`)
msprime `sim_ancestry` per chromosome (1,080 diploid individuals, population size 10,000, recombination
rate 1e-8, ploidy 2) and `sim_mutations` (rate 2e-8, binary model, discrete genome). The first 80 individuals
are written here; the other 1,000 are used only for the GWAS. chrX is simulated like an autosome (all
individuals diploid). Post-processing, all deterministic:

- REF is the genome base at POS; SNV ALT is another base (transitions favoured);
- ~5 % indels: deletions (REF = 2-6 genome bases, ALT = first base) and insertions (ALT = REF + 1-5 bases);
- ~2 % multi-allelic SNVs (two ALT alleles, GT indexes 0/1/2), made by folding the next site's carriers into
  allele 2;
- ~0.5 % of calls written as `.|.` (the truth below uses the simulated genotypes);
- ID `rs<number>`, about 1 % `.`;
- sites on N, sites monomorphic in the 80 (or, for biallelic ones, in the 1,000 GWAS individuals) and records
  whose REF span overlaps the previous record are dropped.

This build: {n_records} records ({n_snv} biallelic SNVs, {n_indel} indels, {n_multi} multi-allelic),
{n_missing} missing calls, {n_no_rsid} records without rsid, {sites_per_window} records per 4,096 bp TSS window on
average.

### Broken VCFs (`broken/`)
A few records of `genotypes.vcf.gz` on chr1 around the first two genes, same header and samples.
- `unphased.vcf.gz`: one record has unphased calls (`0/1`); invalid unless unphased input is allowed.
- `ref_mismatch.vcf.gz`: one SNV has a REF that differs from `genome.fa`; invalid (wrong build).
- `symbolic.vcf.gz`: SNVs plus a `<DEL>` record (INFO `SVTYPE`, `END`) and a record with ALT `X,*`; valid input:
  the symbolic and `*` alleles must be skipped (and counted) by the reader.

### Expression (`expression.tsv`)
Individual variation arises through the sequence model: each value is a planted EnPACT function of the tiny
Enformer's features of the individual's two haplotypes, plus noise. Per gene g, haplotype h and individual j:

- `x_gh` (8 tracks) = `log1p(max(mean of the 4 central output bins, 0))` of the tiny Enformer on haplotype h's
  4,096 bp window centred on the TSS: exactly the inputs of enpact's elastic net. Computed with enpact's own code
  (haplotype windows of `enpact.haplotypes` through `enpact.predict.predict_loci`, the Enformer predictor with
  `bins: 4`, fp32 on CPU, one thread) on all 1,080 simulated individuals, from a temporary VCF of their true
  genotypes (no missing calls). Row 0 of every gene is its reference window.
- `m_k`, `s_k`: mean and population sd over the {n_genes} genes of track k's input in the reference window.
- `G_gj = (f(x_g,j,1) + f(x_g,j,2)) / 2` with `f(x) = sum_k w_k (x_k - m_k) / s_k`, `w = {weights}`: the
  planted genetic value, the mean of the two haplotypes as in enpact's personalized predictions
  (`truth/genetic_expression.tsv`);
- `value_gj = G_gj + u_g + e_gj`, gene offset `u_g ~ N(0, 0.4^2)` (a gene level the sequence model does not
  explain, the same for every individual), noise `e_gj ~ N(0, 0.05^2)`.

So the gene means follow `f` of the reference window (sd {between_gene_sd} across genes) plus `u_g`, and the
differences between individuals follow `f` of their haplotype windows. Those differences are small next to the
differences between genes, as the tiny Enformer responds little to single variants: the sd of `G_gj` over the
80 is {genetic_sd_q} (10th, 50th, 90th percentile over genes), so the planted cis heritability
`var(G) / (var(G) + 0.05^2)` has median {h2_median}; {n_substantial} genes have at least 0.3 (a "substantial" signal,
`truth/gene_signal.tsv`). The 1,080 individuals carry {n_windows} distinct haplotype windows over all genes
(median {windows_median} per gene, at most {windows_max}). Values have 6 significant digits.

### GWAS (`gwas.tsv.gz`)
Trait in the 1,000 GWAS individuals:
`y_j = sum over {n_causal} causal genes of gamma_g * (G_gj - mean G_g) + N(0, 0.75)`, with `G_gj` the planted
genetic value computed as above on the GWAS individuals' haplotypes. Causal genes are drawn among the genes the
pipeline can model: on chr1-chr6 (the demo's train, valid and test chromosomes), with cis heritability >= 0.5
in the 80 and a genetic sd in the GWAS individuals at least the median. Two causal genes are at least 30 kb
apart and their genetic values correlate with |r| < 0.1 in the GWAS individuals, so that neither masks nor
stands in for the other (their neighbours in LD do show up in the TWAS, as in real data). Random signs, sizes
`{{1.2, 1.1, 1.0, 1.0, 0.9, 0.9}}` (sd of each gene's contribution, relative), scaled so that the genetic variance
is 0.25 (realised h2 {h2_realised}). This build: {causal_names}.
Marginal least-squares regression of y on the ALT dosage of every biallelic VCF record (SNVs and indels;
multi-allelic records are left out). Columns:

| column | meaning |
|---|---|
| `variant_id` | `chrom_pos_ref_alt_b38`, always in the VCF's REF/ALT order |
| `rsid` | the VCF ID (`.` when none) |
| `chromosome`, `position` | as in the VCF (1-based) |
| `effect_allele`, `non_effect_allele` | ALT/REF, or REF/ALT for the ~30 % of rows reported swapped |
| `frequency` | effect allele frequency in the 1,000 individuals |
| `effect_size`, `standard_error`, `zscore` | per effect allele; `zscore = effect_size / standard_error` |
| `pvalue` | two-sided normal p of `zscore` |
| `sample_size` | 1000 |

Rows are sorted by chromosome (chr1..chr6, chrX) and position. This build: {n_gwas} rows, {n_swapped} swapped,
{n_gwas_hits} with p < 1e-6. Causal genes and effects: `truth/causal_genes.tsv`, `truth/planted.json` (`gwas`).

### Tiny Enformer (`enformer_tiny/`)
`Enformer.from_hparams(dim=12, depth=1, heads=1, dim_divisible_by=2, target_length=4,
output_heads={{'human': 8}}, num_downsamples=7)` after `torch.manual_seed({seed})`, saved with
`save_pretrained(dir, safe_serialization=False)`; load it with `Enformer.from_pretrained(dir)` (without
`use_tf_gamma`, which only supports the full-size model). Before saving, every conv and linear weight except the
attention-pooling logits is redrawn as N(0, 1.2^2 / fan_in) with zero bias: with the library's default
initialisation the six conv stages shrink the sequence signal so much that all windows give the same output to
6 digits; with this one the tracks vary by 5-40 % across genes and a single SNV within a few hundred bp of the
centre moves them by about 0.4 % (median; less farther out).
Input 4,096 bp (32 bins of 128 bp, cropped to the 4 central bins), output (batch, 4, 8).
`enpact_predictor.json` (`{{"window_bp": 4096}}`) tells enpact's Enformer predictor the input length;
`tracks.tsv` (`index name`) names the 8 made-up tracks.

### Truth (`truth/`)
- `causal_genes.tsv`: `gene_id effect`, one row per gene (genes.tsv order), the signed planted `gamma_g` of a
  causal gene (trait sd per unit of planted genetic value), 0 for the others. `enpact run` on the demo names it
  (parameter `truth_causal_genes`), and the report states recall and precision of the causal genes among the TWAS
  hits and whether their signs agree.
- `gene_signal.tsv`: per gene `gene_id gene_name chrom`, `reference_value` (`f` of the reference window),
  `gene_offset` (`u_g`), `genetic_sd` (sd of `G_gj` over the 80), `noise_sd`, `cis_h2` (planted cis heritability
  in the 80), `genetic_sd_gwas` (sd of `G_gj` over the GWAS individuals), `haplotype_windows` (distinct windows
  among the 2,160 haplotypes, reference included).
- `genetic_expression.tsv`: `G_gj` of the 80, in the layout of `expression.tsv` (6 significant digits).
- `planted.json`: `expression` (model, track names and weights, `input_mean` and `input_sd` (`m`, `s`), noise
  sds, and per gene `motif_copies`, `reference_value`, `gene_offset`) and `gwas` (`causal_genes` with `gene_id`,
  `gene_name`, `gamma`, `genetic_variance`; `h2_target`, `h2_realised`).
- `reference_tracks.tsv`: `gene_id` and the 8 tracks (float32 values printed with 9 significant digits); a
  reference for the reference-feature step, computed one window at a time on CPU with 1 thread.
"""


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=DEFAULT_OUTDIR, help="output directory (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="master seed (default: %(default)s)")
    parser.add_argument("--second-context-only", action="store_true",
                        help="only (re)write contexts/ and contexts.csv from the truth files already in --outdir")
    parser.add_argument("--borzoi-only", action="store_true",
                        help="only (re)write borzoi/ (expression planted on the tiny random Borzoi) from the files "
                        "already in --outdir")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.second_context_only:
        write_second_context(args.outdir, args.seed)
        return 0
    if args.borzoi_only:
        write_borzoi_demo(args.outdir, args.seed)
        return 0
    logging.getLogger("msprime").setLevel(logging.WARNING)
    started = time.perf_counter()
    stats = build(args.outdir, args.seed)
    log.info("done in %.1f s: %s", time.perf_counter() - started, stats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
