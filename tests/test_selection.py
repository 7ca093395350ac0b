"""Personalizing only the loci near a trait's signal (`enpact select`; parameters lin_gwas_pvalue, select_variants,
select_regions): selection before personalization, training on every locus."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO
from enpact.cli import main
from enpact.errors import EnpactError
from enpact.loci import read_loci
from enpact.params import resolve_params
from enpact.runner import run_pipeline
from enpact.selection import read_credible_variants, read_regions, select_loci
from enpact.store import read_personalized_store

WINDOW = 4096   # the demo predictor's


def _by_hand(loci: pd.DataFrame, chrom: list[str], pos0: list[int]) -> set[str]:
    """Loci whose window [center - W/2, center + W/2) holds one of the positions, by brute force."""
    chosen = set()
    for locus, c, center in zip(loci["locus_id"], loci["chrom"], loci["center"]):
        start = center - WINDOW // 2
        if any(pc == c and start <= p < start + WINDOW for pc, p in zip(chrom, pos0)):
            chosen.add(locus)
    return chosen


@pytest.fixture(scope="module")
def demo_loci(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("select") / "loci.tsv"
    assert main(["loci", "--annotation", str(DEMO / "genes.tsv"), "--expression", str(DEMO / "expression.tsv"),
                 "--fasta", str(DEMO / "genome.fa"), "--out", str(out)]) == 0
    return read_loci(out)


def test_select_keeps_the_loci_with_a_gwas_signal_in_their_window(demo_loci, tmp_path):
    loci_file = tmp_path / "loci.tsv"
    demo_loci.to_csv(loci_file, sep="\t", index=False)
    assert main(["select", "--loci", str(loci_file), "--lin-window-bp", str(WINDOW), "--gwas", str(DEMO / "gwas.tsv.gz"),
                 "--gwas-pvalue-threshold", "5e-8", "--loci-per-chunk", "5", "--chunks", str(tmp_path / "chunks"),
                 "--out", str(tmp_path / "selected.tsv")]) == 0
    gwas = pd.read_csv(DEMO / "gwas.tsv.gz", sep="\t")
    hits = gwas[gwas["pvalue"] < 5e-8]
    expected = _by_hand(demo_loci, hits["chromosome"].astype(str).tolist(), (hits["position"] - 1).tolist())
    selected = read_loci(tmp_path / "selected.tsv")
    assert set(selected["locus_id"]) == expected and 0 < len(expected) < len(demo_loci)
    assert (selected["selected_by"] == "gwas").all()
    chunks = sorted((tmp_path / "chunks").glob("*.tsv"))
    assert sum(len(read_loci(c)) for c in chunks) == len(selected) and all(len(read_loci(c)) <= 5 for c in chunks)


def test_credible_sets_and_regions(demo_loci, tmp_path):
    first, second = demo_loci.iloc[3], demo_loci.iloc[50]
    credible = tmp_path / "credible.tsv"
    credible.write_text(f"variant_id\tpip\n{first.chrom}_{first.center + 1 + 100}_A_G_b38\t0.9\n"
                        f"chr9_5_A_C_b38\t0.1\n")
    by_position = tmp_path / "credible_pos.tsv"
    by_position.write_text(f"chrom\tpos\n{first.chrom}\t{first.center + 1 + 100}\n")
    regions = tmp_path / "regions.bed"
    regions.write_text(f"track name=x\n{second.chrom}\t{second.center + WINDOW // 2 - 10}\t{second.center + WINDOW}\n")
    for table in (credible, by_position):
        chosen = select_loci(demo_loci, WINDOW, credible=read_credible_variants(table))
        assert chosen["locus_id"].tolist() == [first.locus_id]
    chosen = select_loci(demo_loci, WINDOW, credible=read_credible_variants(credible), regions=read_regions(regions))
    assert dict(zip(chosen["locus_id"], chosen["selected_by"])) == {first.locus_id: "credible_set",
                                                                   second.locus_id: "region"}
    regions.write_text(f"{second.chrom}\t{second.center + WINDOW // 2}\t{second.center + WINDOW}\n")   # just outside
    assert select_loci(demo_loci, WINDOW, regions=read_regions(regions)).empty
    (tmp_path / "bad.tsv").write_text("snp\nrs1\n")
    with pytest.raises(EnpactError, match="needs a variant_id column"):
        read_credible_variants(tmp_path / "bad.tsv")


def test_a_selection_that_selects_nothing_stops_with_the_reason(demo_loci, tmp_path, capsys):
    loci_file = tmp_path / "loci.tsv"
    demo_loci.to_csv(loci_file, sep="\t", index=False)
    (tmp_path / "regions.bed").write_text("chr9\t0\t1000\n")
    assert main(["select", "--loci", str(loci_file), "--lin-window-bp", str(WINDOW), "--regions",
                 str(tmp_path / "regions.bed"), "--chunks", str(tmp_path / "c"), "--out", str(tmp_path / "s.tsv")]) == 1
    assert "has 1 regions in its 4,096 bp window: nothing to personalize" in capsys.readouterr().err
    assert not (tmp_path / "s.tsv").exists()


def test_run_personalizes_only_the_selected_loci_and_trains_on_all(tmp_path):
    outdir = tmp_path / "results"
    run_pipeline(resolve_params(None, {"outdir": str(outdir), "lin_gwas_pvalue": 5e-8}), progress=False)
    selected = read_loci(outdir / "loci" / "selected.tsv")
    stores = sorted((outdir / "personalized").glob("*.h5"))
    personalized = [l for p in stores for l in read_personalized_store(p, False).locus_ids]
    assert sorted(personalized) == sorted(selected["locus_id"]) and len(selected) < 40
    metrics = json.loads((outdir / "model" / "metrics.json").read_text())
    assert metrics["model"]["train"]["n"] > 100   # the model trained on every train-chromosome locus
    twas = pd.read_csv(outdir / "twas" / "gwas.csv")
    assert set(twas["gene"]) <= set(selected["locus_id"])
    summary = json.loads((outdir / "report" / "summary.json").read_text())
    assert summary["personalized"]["loci"] == len(selected)
    assert summary["personalized"]["windows_predicted"] == sum(
        int(read_personalized_store(p, False).n_unique_windows.sum()) for p in stores)
    assert np.isfinite(summary["personalized"]["windows_predicted"])
