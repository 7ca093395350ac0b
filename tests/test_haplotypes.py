"""Haplotype windows against an independent reference: bcftools consensus + its chain file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import random_sequence, write_fasta, write_vcf
from enpact.genome import Genome, decode
from enpact.haplotypes import locus_windows
from enpact.predict import iter_locus_windows
from enpact.variants import VcfReader

WINDOW = 1024
SAMPLES = ["S1", "S2", "S3", "S4", "S5"]


def random_variants(sequence: str, chrom: str, n: int, seed: int, missing: bool = True) -> list[str]:
    """Non-overlapping SNVs, insertions, deletions and multi-allelic sites with random phased genotypes."""
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.choice(np.arange(5, len(sequence) - 20, 12), size=n, replace=False))
    records = []
    for pos in positions.tolist():
        ref_base = sequence[pos]
        kind = rng.choice(["snv", "ins", "del", "multi"], p=[0.55, 0.15, 0.2, 0.1])
        others = [b for b in "ACGT" if b != ref_base]
        if kind == "snv":
            ref, alts = ref_base, [str(rng.choice(others))]
        elif kind == "ins":
            ref, alts = ref_base, [ref_base + "".join(rng.choice(list("ACGT"), rng.integers(1, 8)))]
        elif kind == "del":
            length = int(rng.integers(2, 9))
            ref, alts = sequence[pos : pos + length], [ref_base]
        else:
            ref, alts = ref_base, [str(a) for a in rng.choice(others, 2, replace=False)]
        gts = []
        for _ in SAMPLES:
            a, b = rng.integers(0, len(alts) + 1, 2)
            if missing and rng.random() < 0.03:
                a = "."
            gts.append(f"{a}|{b}")
        records.append("\t".join([chrom, str(pos + 1), f"rs{pos}", ref, ",".join(alts), ".", "PASS", ".", "GT", *gts]))
    return records


@pytest.fixture(scope="module")
def genome_and_vcf(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """A 2-chromosome genome and a VCF with every kind of variant the reader must apply."""
    tmp = tmp_path_factory.mktemp("hap")
    chroms = {"chr1": random_sequence(12_000, 1), "chr2": random_sequence(6_000, 2)}
    fasta = write_fasta(tmp / "genome.fa", chroms)
    records = random_variants(chroms["chr1"], "chr1", 400, 3) + random_variants(chroms["chr2"], "chr2", 200, 4)
    vcf = write_vcf(tmp / "calls.vcf", {c: len(s) for c, s in chroms.items()}, SAMPLES, records)
    return fasta, vcf, chroms


def parse_chain(path: Path) -> list[tuple[int, int, int]]:
    """Aligned blocks (ref_start, hap_start, size) of a single-chromosome chain file."""
    blocks, t, q = [], 0, 0
    for line in path.read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "chain":
            t, q = int(fields[5]), int(fields[10])
            continue
        size = int(fields[0])
        blocks.append((t, q, size))
        if len(fields) == 3:
            t += size + int(fields[1])
            q += size + int(fields[2])
    return blocks


def lift(blocks: list[tuple[int, int, int]], position: int) -> int | None:
    """Haplotype coordinate of a reference position, None inside a deletion."""
    for t, q, size in blocks:
        if t <= position < t + size:
            return q + position - t
    return None


def consensus(bcftools: str, fasta: Path, vcf: Path, chrom: str, sample: str, hap: int, tmp: Path) -> tuple[str, list]:
    """Haplotype sequence of one chromosome and its chain, by bcftools consensus."""
    chain = tmp / f"{chrom}.{sample}.{hap}.chain"
    region = subprocess.run(["samtools", "faidx", str(fasta), chrom], check=True, capture_output=True, text=True).stdout
    ref_fa = tmp / f"{chrom}.fa"
    ref_fa.write_text(region)
    result = subprocess.run(
        [bcftools, "consensus", "-f", str(ref_fa), "-s", sample, "-H", str(hap), "--chain", str(chain), str(vcf)],
        check=True, capture_output=True, text=True,
    )
    sequence = "".join(line for line in result.stdout.splitlines() if not line.startswith(">"))
    return sequence.upper(), parse_chain(chain)


def cut(sequence: str, center: int, length: int) -> str:
    """The window of `length` centred on `center`, N-padded outside the sequence."""
    lo = center - length // 2
    return "".join(sequence[i] if 0 <= i < len(sequence) else "N" for i in range(lo, lo + length))


def test_windows_match_bcftools_consensus(genome_and_vcf, bcftools, tmp_path):
    fasta, vcf, chroms = genome_and_vcf
    genome = Genome(fasta)
    reader = VcfReader(vcf)
    rng = np.random.default_rng(7)
    checked = 0
    for chrom, sequence in chroms.items():
        centers = [3, 400, len(sequence) - 2] + rng.integers(0, len(sequence), 12).tolist()
        table = reader.read(chrom, 0, len(sequence), genome)
        for sample_index, sample in enumerate(SAMPLES):
            for hap in (1, 2):
                hap_seq, blocks = consensus(bcftools, fasta, vcf, chrom, sample, hap, tmp_path)
                for center in centers:
                    image = lift(blocks, center)
                    if image is None:
                        continue  # centre deleted on this haplotype: no chain position to compare with
                    windows = locus_windows(genome, chrom, center, WINDOW, table)
                    ours = decode(windows.windows[windows.haplotype_window[sample_index, hap - 1]])
                    assert ours == cut(hap_seq, image, WINDOW), (chrom, center, sample, hap)
                    checked += 1
    assert checked > 250


def test_reference_window_is_row_zero_and_homozygous_reference_maps_to_it(genome_and_vcf):
    fasta, vcf, chroms = genome_and_vcf
    genome = Genome(fasta)
    table = VcfReader(vcf).read("chr1", 0, 12_000, genome)
    table.alleles[:, 0, :] = 0  # make S1 homozygous reference everywhere
    windows = locus_windows(genome, "chr1", 5_000, WINDOW, table)
    assert decode(windows.windows[0]) == chroms["chr1"][5_000 - WINDOW // 2 : 5_000 + WINDOW // 2]
    assert windows.haplotype_window[0].tolist() == [0, 0]


def test_identical_haplotypes_share_one_window(genome_and_vcf):
    fasta, vcf, _ = genome_and_vcf
    genome = Genome(fasta)
    table = VcfReader(vcf).read("chr1", 0, 12_000, genome)
    table.alleles[:, 1, :] = table.alleles[:, 2, 0][:, None]  # S2 both haplotypes = S3 haplotype 1
    windows = locus_windows(genome, "chr1", 6_000, WINDOW, table)
    assert windows.haplotype_window[1, 0] == windows.haplotype_window[1, 1] == windows.haplotype_window[2, 0]
    rows = [decode(w) for w in windows.windows]
    assert len(set(rows)) == len(rows), "distinct rows must hold distinct sequences"


def test_chunk_iteration_reads_each_region_once_and_keeps_loci_order(genome_and_vcf, monkeypatch):
    fasta, vcf, _ = genome_and_vcf
    genome = Genome(fasta)
    reader = VcfReader(vcf)
    calls = []
    original = reader.read
    monkeypatch.setattr(reader, "read", lambda *a, **k: calls.append(a[:3]) or original(*a, **k))
    loci = pd.DataFrame({"locus_id": ["a", "b", "c", "d"], "chrom": ["chr1", "chr1", "chr2", "chr1"],
                         "center": [2000, 2300, 3000, 9000]})
    seen = [i for i, _ in iter_locus_windows(genome, loci, WINDOW, reader)]
    assert sorted(seen) == [0, 1, 2, 3]
    assert len(calls) == 3  # a and b share one merged region; c and d have their own


def test_sequence_command_on_the_demo_vcf_matches_bcftools_consensus(bcftools, tmp_path):
    from conftest import DEMO

    genes = pd.read_csv(DEMO / "genes.tsv", sep="\t")
    chr1 = genes[genes["chrom"] == "chr1"].head(6)
    loci = tmp_path / "loci.tsv"
    pd.DataFrame({"locus_id": chr1["gene_id"], "chrom": "chr1", "center": chr1["tss"]}).to_csv(loci, sep="\t",
                                                                                                  index=False)
    out = tmp_path / "windows.fa"
    samples = ["IND003", "IND017", "IND042"]
    from enpact.cli import main

    assert main(["sequence", "--fasta", str(DEMO / "genome.fa"), "--loci", str(loci), "--window-bp", "4096",
                 "--vcf", str(DEMO / "genotypes.vcf.gz"), "--samples", ",".join(samples), "--line-width", "0",
                 "--out", str(out)]) == 0
    records = dict(zip(*[iter(out.read_text().split())] * 2))
    assert len(records) == len(chr1) * (1 + 2 * len(samples))
    n_indel_windows = 0
    for sample in samples:
        for hap in (1, 2):
            hap_seq, blocks = consensus(bcftools, DEMO / "genome.fa", DEMO / "genotypes.vcf.gz", "chr1", sample, hap,
                                        tmp_path)
            for gene_id, tss in zip(chr1["gene_id"], chr1["tss"]):
                image = lift(blocks, int(tss))
                assert image is not None
                assert records[f">{gene_id}|{sample}|{hap}"] == cut(hap_seq, image, 4096), (gene_id, sample, hap)
                n_indel_windows += image != int(tss)
    assert n_indel_windows > 0  # some windows are shifted by upstream indels


def test_broken_demo_vcfs_give_one_line_errors_or_are_skipped_and_counted(tmp_path, capsys):
    from conftest import DEMO
    from enpact.cli import main

    loci = tmp_path / "loci.tsv"
    genes = pd.read_csv(DEMO / "genes.tsv", sep="\t").head(2)
    pd.DataFrame({"locus_id": genes["gene_id"], "chrom": genes["chrom"], "center": genes["tss"]}).to_csv(
        loci, sep="\t", index=False)
    base = ["sequence", "--fasta", str(DEMO / "genome.fa"), "--loci", str(loci), "--window-bp", "4096",
            "--out", str(tmp_path / "o.fa"), "--vcf"]
    assert main(base + [str(DEMO / "broken/unphased.vcf.gz")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unphased genotype" in err[0] and "--allow-unphased" in err[0]
    assert main(base + [str(DEMO / "broken/unphased.vcf.gz"), "--allow-unphased"]) == 0
    capsys.readouterr()
    assert main(base + [str(DEMO / "broken/ref_mismatch.vcf.gz")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not match the FASTA" in err[0] and "genome builds" in err[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.fa")]  # no partial output left behind
    assert main(base + [str(DEMO / "broken/symbolic.vcf.gz")]) == 0
    assert "symbolic or '*' alleles were applied as reference" in capsys.readouterr().err


def _consensus_windows(bcftools: str, fasta: Path, vcf: Path, chrom: str, samples: list[str], centers: list[int],
                       window_bp: int, tmp: Path) -> dict[int, list[str]]:
    """Per centre, the window of every haplotype (sample-major) cut from bcftools consensus at the centre's image;
    centres deleted on some haplotype are left out."""
    windows: dict[int, list[str]] = {center: [] for center in centers}
    for sample in samples:
        for hap in (1, 2):
            hap_seq, blocks = consensus(bcftools, fasta, vcf, chrom, sample, hap, tmp)
            for center in centers:
                image = lift(blocks, center)
                windows[center].append(None if image is None else cut(hap_seq, image, window_bp))
    return {c: w for c, w in windows.items() if None not in w}


def _same_partition(index: np.ndarray, sequences: list[str]) -> bool:
    """True when two haplotypes share a window index exactly when they share a sequence."""
    by_sequence = {s: i for i, s in enumerate(dict.fromkeys(sequences))}
    codes = np.array([by_sequence[s] for s in sequences])
    pairs_index = index[:, None] == index[None, :]
    return bool(np.array_equal(pairs_index, codes[:, None] == codes[None, :]))


def test_planned_distinct_windows_are_the_distinct_window_sequences(bcftools, tmp_path):
    """Planted haplotypes that differ only outside the window (an SNV past the edge, a deletion upstream of it, an
    insertion whose only base inside is its anchor, an SNV pushed out by an indel) share one window; variants that an
    indel pulls into the window keep theirs apart. The count is checked against bcftools consensus."""
    from enpact.plan import plan_windows

    sequence = random_sequence(1000, 11)
    fasta = write_fasta(tmp_path / "genome.fa", {"chr1": sequence})
    center, window_bp = 500, 64                                       # window [468, 532)
    other = {b: "C" if b != "C" else "G" for b in "ACGT"}
    variants = {                                                      # 0-based position, REF, ALT
        "del_outside_left": (440, sequence[440:446], sequence[440]),
        "snv_465": (465, sequence[465], other[sequence[465]]),         # pulled in by the deletion at 480
        "snv_first_base": (468, sequence[468], other[sequence[468]]),  # pushed out by the insertion at 490
        "del_inside": (480, sequence[480:485], sequence[480]),
        "ins_upstream": (490, sequence[490], sequence[490] + "GG"),
        "ins_downstream": (520, sequence[520], sequence[520] + "AAAA"),
        "snv_530": (530, sequence[530], other[sequence[530]]),         # pushed out by the insertion at 520
        "ins_anchor_last_base": (531, sequence[531], sequence[531] + "TTT"),
        "snv_outside_right": (534, sequence[534], other[sequence[534]]),
    }
    haplotypes = [set(), {"snv_outside_right"}, {"del_outside_left"}, {"ins_anchor_last_base"},
                  {"del_outside_left", "snv_outside_right"}, {"snv_465"},                        # all as reference
                  {"del_inside"}, {"del_inside", "snv_465"}, {"snv_first_base"}, {"ins_upstream"},
                  {"ins_upstream", "snv_first_base"}, {"ins_downstream"}, {"ins_downstream", "snv_530"},
                  {"snv_530"}, {"ins_downstream", "snv_outside_right", "ins_anchor_last_base"},
                  {"del_inside", "snv_outside_right"}]
    samples = [f"S{i}" for i in range(len(haplotypes) // 2)]
    records = []
    for name, (pos, ref, alt) in variants.items():
        gts = [f"{int(name in haplotypes[2 * s])}|{int(name in haplotypes[2 * s + 1])}" for s in range(len(samples))]
        records.append("\t".join(["chr1", str(pos + 1), name, ref, alt, ".", "PASS", ".", "GT", *gts]))
    vcf = write_vcf(tmp_path / "calls.vcf", {"chr1": len(sequence)}, samples, records)
    expected = _consensus_windows(bcftools, fasta, vcf, "chr1", samples, [center], window_bp, tmp_path)[center]
    reference = sequence[center - window_bp // 2:center + window_bp // 2]
    assert len(set(expected)) == 7 and expected[:6] == [reference] * 6   # the planted truth, by bcftools

    loci = pd.DataFrame({"locus_id": ["L1"], "chrom": ["chr1"], "center": [center]})
    plan = plan_windows(Genome(fasta), loci, VcfReader(vcf), window_bp, 100)
    assert int(plan.n_distinct[0]) == len(set(expected) | {reference})
    assert _same_partition(plan.haplotype_window[0].reshape(-1), expected)
    built = locus_windows(Genome(fasta), "chr1", center, window_bp, VcfReader(vcf).read("chr1", 0, 1000, Genome(fasta)))
    assert [decode(built.windows[i]) for i in built.haplotype_window.reshape(-1)] == expected


def test_distinct_windows_are_the_distinct_sequences_of_random_haplotypes(bcftools, tmp_path):
    """Short windows over dense random SNVs, indels and multi-allelic sites: haplotypes share a window index exactly
    when bcftools consensus gives them the same window sequence."""
    sequence = random_sequence(3000, 21)
    fasta = write_fasta(tmp_path / "genome.fa", {"chr1": sequence})
    vcf = write_vcf(tmp_path / "calls.vcf", {"chr1": len(sequence)}, SAMPLES,
                    random_variants(sequence, "chr1", 150, 22, missing=False))
    genome = Genome(fasta)
    table = VcfReader(vcf).read("chr1", 0, len(sequence), genome)
    centers = sorted(set(np.random.default_rng(23).integers(100, len(sequence) - 100, 60).tolist()))
    checked = shared = 0
    for window_bp in (24, 48):
        expected = _consensus_windows(bcftools, fasta, vcf, "chr1", SAMPLES, centers, window_bp, tmp_path)
        for center, sequences in expected.items():
            windows = locus_windows(genome, "chr1", center, window_bp, table)
            reference = sequence[center - window_bp // 2:center + window_bp // 2]
            assert windows.n_distinct == len(set(sequences) | {reference}), (window_bp, center)
            assert _same_partition(windows.haplotype_window.reshape(-1), sequences), (window_bp, center)
            checked += 1
            shared += len(set(sequences)) < len(sequences)
    assert checked > 80 and shared > 20
