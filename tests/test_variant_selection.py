"""Personalizing with the variants linearization will use (`--variants linearizable`, parameter
personalize_variants): the haplotypes carry exactly the alleles that pass linearization's filters."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO, demo_model, personalize_planned
from enpact.cli import main
from enpact.loci import write_loci
from enpact.store import read_personalized_store

VCF = DEMO / "genotypes.vcf.gz"
PANEL = [f"IND{i:03d}" for i in range(1, 81)]
CHUNK = PANEL[:24]
MAF = 0.05


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Six demo loci, a model trained on 40 reference windows, 24 of the panel's individuals and its sample file."""
    tmp = tmp_path_factory.mktemp("variants")
    _genome, loci, predictor = demo_model(tmp / "model")
    subset = pd.concat([loci[loci["chrom"] == "chr1"].iloc[:3], loci[loci["chrom"] == "chr4"].iloc[:3]])
    write_loci(subset, tmp / "loci.tsv")
    (tmp / "chunk.txt").write_text("\n".join(CHUNK) + "\n")
    (tmp / "panel.txt").write_text("\n".join(PANEL) + "\n")
    return tmp, subset, predictor.window_bp


def _personalize(tmp, out, *variants):
    """The chunk's individuals personalized (plan, parts, merged) with these variant options."""
    assert personalize_planned(tmp / out, tmp / "loci.tsv", [str(tmp / "model")], samples_file=tmp / "chunk.txt",
                               variants=variants, vcf=VCF) == 0
    return read_personalized_store(tmp / out)


def _haplotypes(bcftools: str, chrom: str, start: int, end: int, samples: list[str]) -> pd.DataFrame:
    """bcftools' view of a region: one row per record, the GT string of each sample."""
    text = subprocess.run([bcftools, "query", "-r", f"{chrom}:{start + 1}-{end}", "-s", ",".join(samples), "-f",
                           "%POS\\t%REF\\t%ALT[\\t%GT]\\n", str(VCF)], capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in text.splitlines()]
    return pd.DataFrame(rows, columns=["pos", "ref", "alt", *samples])


def _allele_codes(gts: pd.DataFrame, samples: list[str]) -> np.ndarray:
    """(records, samples, 2) allele indexes from GT strings; missing (.) as -1."""
    codes = np.zeros((len(gts), len(samples), 2), dtype=int)
    for i, sample in enumerate(samples):
        for r, gt in enumerate(gts[sample]):
            for h, allele in enumerate(gt.replace("/", "|").split("|")[:2]):
                codes[r, i, h] = -1 if allele == "." else int(allele)
    return codes


def _expected_distinct_windows(bcftools: str, chrom: str, center: int, window_bp: int) -> int:
    """Windows the chunk needs when its haplotypes carry only the usable alleles, computed here from bcftools'
    genotypes: biallelic SNVs, not A/T or C/G, minor allele frequency >= MAF over the panel (missing = REF), not
    monomorphic, inside the window; plus the reference window."""
    start = center - window_bp // 2
    records = _haplotypes(bcftools, chrom, start, start + window_bp, PANEL)
    records = records[(records["pos"].astype(int) - 1 >= start) & (records["pos"].astype(int) - 1 < start + window_bp)]
    panel = _allele_codes(records, PANEL)
    usable = []
    for r, (ref, alt) in enumerate(zip(records["ref"], records["alt"])):
        if "," in alt or len(ref) != 1 or len(alt) != 1 or {ref, alt} in ({"A", "T"}, {"C", "G"}):
            continue
        dosage = (panel[r] == 1).sum(axis=1)
        frequency = dosage.mean() / 2
        if min(frequency, 1 - frequency) >= MAF and dosage.std() > 0:
            usable.append(r)
    carried = panel[usable][:, [PANEL.index(s) for s in CHUNK]] == 1   # (usable, chunk, 2)
    patterns = {tuple(carried[:, s, h]) for s in range(len(CHUNK)) for h in range(2)}
    patterns.discard(tuple([False] * len(usable)))
    return 1 + len(patterns)


@pytest.fixture(scope="module")
def stores(setup):
    """The chunk personalized with the usable variants and with all of them."""
    tmp = setup[0]
    usable = _personalize(tmp, "usable.h5", "--variants", "linearizable", "--maf", str(MAF), "--panel-samples-file",
                          str(tmp / "panel.txt"))
    return usable, _personalize(tmp, "all.h5")


def test_linearizable_variants_are_exactly_those_linearization_uses(setup, stores, bcftools):
    _tmp, loci, window_bp = setup
    usable, everything = stores
    for i, (chrom, center) in enumerate(zip(loci["chrom"], loci["center"])):
        assert usable.n_unique_windows[i] == _expected_distinct_windows(bcftools, chrom, int(center), window_bp)
    assert usable.n_unique_windows.sum() < everything.n_unique_windows.sum()   # rare variants, indels, ... left out
    np.testing.assert_array_equal(usable.reference, everything.reference)       # the reference window is the same
    assert usable.meta["variants"]["linearizable"]["maf"] == MAF and "variants" not in everything.meta


def test_with_every_filter_open_the_haplotypes_carry_every_variant(setup, stores):
    """maf 0 and every kind kept, over the whole window: the same predictions as all variants (the option changes
    only which variants are applied)."""
    opened = _personalize(setup[0], "opened.h5", "--variants", "linearizable", "--maf", "0", "--keep-indels",
                          "--keep-ambiguous", "--keep-multiallelic")
    everything = stores[1]
    np.testing.assert_array_equal(opened.n_unique_windows, everything.n_unique_windows)
    np.testing.assert_allclose(opened.prediction, everything.prediction, rtol=1e-6, atol=1e-6)


def test_chunks_personalized_with_different_variants_do_not_merge(setup, stores, capsys):
    tmp = setup[0]
    assert main(["merge", "--inputs", str(tmp / "usable.h5"), str(tmp / "all.h5"), "--out", str(tmp / "m.h5")]) == 1
    assert "different model, predictor or variant selection" in capsys.readouterr().err
