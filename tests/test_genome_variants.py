"""Genome windows and VCF reading: padding, encoding, chromosome naming, and the user errors."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import random_sequence, write_fasta, write_vcf
from enpact.errors import EnpactError
from enpact.genome import Genome, decode, encode, resolve_chrom
from enpact.haplotypes import locus_windows
from enpact.variants import VcfReader


@pytest.fixture()
def genome(tmp_path) -> Genome:
    return Genome(write_fasta(tmp_path / "g.fa", {"chr1": "ACGTNacgtn" + random_sequence(990, 5), "chr2": "GGGG"}))


def test_encode_decode_roundtrip_and_unknown_bases_become_n():
    assert encode("ACGTNacgtnRYK").tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 4, 4, 4]
    assert decode(encode("ACGTNNACGT")) == "ACGTNNACGT"


def test_windows_are_padded_with_n_past_chromosome_ends(genome):
    left = genome.window("chr1", 2, 8)  # start -2
    assert decode(left) == "NNACGTNA"
    right = genome.window("chr2", 4, 8)  # starts at 0 on a 4 bp chromosome
    assert decode(right) == "GGGGNNNN"
    assert genome.windows(["chr1", "chr2"], np.array([2, 4]), 8).shape == (2, 8)


def test_chromosome_names_resolve_across_chr_prefix(genome):
    assert genome.resolve("1") == "chr1"
    assert resolve_chrom("chrMT", {"MT"}) == "MT"
    with pytest.raises(EnpactError, match="chromosome 'chr9' is not in the FASTA"):
        genome.resolve("chr9")


def _vcf(tmp_path, records, samples=("A", "B")):
    return write_vcf(tmp_path / "v.vcf", {"chr1": 1000, "chr2": 4}, list(samples), records)


def _rec(pos, ref, alt, *gts, chrom="chr1"):
    return "\t".join([chrom, str(pos), ".", ref, alt, ".", "PASS", ".", "GT", *gts])


def test_unphased_heterozygous_call_is_an_error_naming_the_site(genome, tmp_path):
    vcf = _vcf(tmp_path, [_rec(12, genome.fetch_string("chr1", 11, 12), "T", "0|1", "0/1")])
    with pytest.raises(EnpactError, match=r"unphased genotype '0/1' for sample B at chr1:12.*--allow-unphased"):
        VcfReader(vcf).read("chr1", 0, 100, genome)
    table = VcfReader(vcf, allow_unphased=True).read("chr1", 0, 100, genome)
    assert table.alleles[0].tolist() == [[0, 1], [0, 1]]
    assert table.counts.unphased_calls == 1


def test_ref_mismatch_is_an_error_naming_the_first_site(genome, tmp_path):
    ref = genome.fetch_string("chr1", 11, 12)
    wrong = "A" if ref != "A" else "C"
    vcf = _vcf(tmp_path, [_rec(5, "N", "A", "0|0", "0|0"), _rec(12, wrong, "G", "0|1", "0|0")])
    with pytest.raises(EnpactError, match=rf"REF allele {wrong} at chr1:12 does not match the FASTA.*genome builds"):
        VcfReader(vcf).read("chr1", 0, 100, genome)


def test_a_variant_past_the_end_of_the_fasta_asks_whether_the_fasta_is_complete(tmp_path):
    """A cut-short FASTA is not blamed on the genome build (issue 24)."""
    short = Genome(write_fasta(tmp_path / "short.fa", {"chr1": "ACGTACGTAC", "chr2": "GGGG"}))
    vcf = _vcf(tmp_path, [_rec(50, "A", "G", "0|1", "0|0")])
    with pytest.raises(EnpactError, match=r"chr1:50 lies past the end of chr1 in the FASTA \(10 bp\): is the FASTA "
                                          r"complete") as err:
        VcfReader(vcf).read("chr1", 0, 100, short)
    assert "genome builds" not in str(err.value)


def test_symbolic_and_missing_alleles_are_applied_as_reference_and_counted(genome, tmp_path):
    base = genome.fetch_string("chr1", 19, 20)
    alt = "A" if base != "A" else "C"
    vcf = _vcf(tmp_path, [_rec(15, genome.fetch_string("chr1", 14, 15), "<DEL>", "1|0", "0|0"),
                          _rec(20, base, f"{alt},*", "2|1", ".|1")])
    reader = VcfReader(vcf)
    table = reader.read("chr1", 0, 100, genome)
    assert table.counts.symbolic_calls == 2 and table.counts.missing_calls == 1
    windows = locus_windows(genome, "chr1", 20, 8, table)
    hap = {(s, h): decode(windows.windows[windows.haplotype_window[s, h]]) for s in range(2) for h in range(2)}
    ref_window = decode(genome.window("chr1", 20, 8))
    assert hap[(0, 0)] == ref_window  # <DEL> and '*' skipped
    assert hap[(0, 1)][4 - 1] == alt and hap[(1, 1)][3] == alt  # position 20 (1-based) is window index 3
    assert hap[(1, 0)] == ref_window  # missing -> reference


def test_unknown_sample_and_missing_index_are_clear_errors(genome, tmp_path):
    vcf = _vcf(tmp_path, [_rec(12, genome.fetch_string("chr1", 11, 12), "T", "0|1", "0|0")])
    with pytest.raises(EnpactError, match="sample 'Z' is not in the VCF"):
        VcfReader(vcf, samples=["A", "Z"])
    plain = tmp_path / "plain.vcf.gz"
    plain.write_bytes(vcf.read_bytes())
    with pytest.raises(EnpactError, match="no tabix index"):
        VcfReader(plain)


def test_chromosome_without_records_gives_empty_table(genome, tmp_path):
    vcf = _vcf(tmp_path, [_rec(12, genome.fetch_string("chr1", 11, 12), "T", "0|1", "0|0")])
    assert len(VcfReader(vcf).read("chr2", 0, 4, genome)) == 0
    assert len(VcfReader(vcf).read("1", 0, 100, genome)) == 1  # unprefixed name resolves to chr1


def test_linearizable_haplotypes_leave_out_the_sites_linearization_leaves_out_for_missing_calls(genome, tmp_path):
    """Personalization with `variants linearizable` and linearization see the same variants: a site with more
    missing calls than lin_max_missing (3 of 20 individuals) is applied to no haplotype, while with every variant
    applied its ALT is in the sequences; missing alleles themselves carry the reference base."""
    from enpact.variants import LinearizableVariants, VariantFilters

    def snv(pos: int, gts: list[str]) -> str:
        ref = genome.fetch_string("chr1", pos - 1, pos)
        alt = next(b for b in "ACGT" if b != ref and {b, ref} not in ({"A", "T"}, {"C", "G"}))
        return _rec(pos, ref, alt, *gts)

    samples = [f"S{i}" for i in range(20)]
    calls = ["0|1" if i % 2 else "1|0" if i % 3 == 0 else "0|0" for i in range(20)]
    poorly_called = [".|." if i in (1, 4, 7) else gt for i, gt in enumerate(calls)]   # 15% missing
    well_called = [".|." if i == 4 else gt for i, gt in enumerate(calls)]             # 5% missing
    vcf = _vcf(tmp_path, [snv(40, well_called), snv(50, poorly_called)], samples)
    reader = VcfReader(vcf)
    table = reader.read("chr1", 0, 100, genome)
    selection = LinearizableVariants(reader, 40, VariantFilters())
    restricted = selection.restrict(table, table, 45)
    np.testing.assert_array_equal(restricted.alleles[0], table.alleles[0])  # kept as read (missing stays missing)
    assert (restricted.alleles[1] <= 0).all() and (table.alleles[1] > 0).any()
    everything = locus_windows(genome, "chr1", 45, 40, table)
    linearizable = locus_windows(genome, "chr1", 45, 40, restricted)
    ref_window = decode(genome.window("chr1", 45, 40))
    at_50, at_40 = 50 - 1 - (45 - 20), 40 - 1 - (45 - 20)
    carrier = 3  # S3: 0|1 at both sites
    with_all = decode(everything.windows[everything.haplotype_window[carrier, 1]])
    with_linearizable = decode(linearizable.windows[linearizable.haplotype_window[carrier, 1]])
    assert with_all[at_50] != ref_window[at_50] and with_linearizable[at_50] == ref_window[at_50]
    assert with_all[at_40] == with_linearizable[at_40] != ref_window[at_40]
    missing_sample = 4  # '.|.' at both sites: the reference window
    assert decode(linearizable.windows[linearizable.haplotype_window[missing_sample, 1]]) == ref_window
