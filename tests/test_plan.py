"""Distinct windows across every individual (`enpact plan`, `enpact personalize --plan --part`, `enpact merge
--plan`): the predictor runs once per distinct window of a locus, whatever the chunk sizes, and the personalized
values are those of personalizing every individual at once."""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO, demo_model
from enpact.cli import main
from enpact.loci import write_loci
from enpact.plan import read_part, read_plan
from enpact.store import read_personalized_store

SAMPLES = [f"IND{i:03d}" for i in range(1, 31)]
COMMON = ["--fasta", str(DEMO / "genome.fa"), "--vcf", str(DEMO / "genotypes.vcf.gz")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Eight demo loci, a model, every individual in one store, and the same individuals in three sample chunks."""
    tmp = tmp_path_factory.mktemp("plan")
    _genome, loci, _predictor = demo_model(tmp / "model")
    write_loci(pd.concat([loci[loci["chrom"] == "chr1"].iloc[:4], loci[loci["chrom"] == "chr2"].iloc[:4]]),
               tmp / "loci.tsv")
    (tmp / "all.txt").write_text("\n".join(SAMPLES) + "\n")
    personalize = ["personalize", *COMMON, "--loci", str(tmp / "loci.tsv"), "--model", str(tmp / "model"), "--device",
                   "cpu", "--batch-size", "16", "--no-progress"]
    assert main([*personalize, "--samples-file", str(tmp / "all.txt"), "--out", str(tmp / "whole.h5")]) == 0
    chunks = []
    for k in range(3):
        (tmp / f"s{k}.txt").write_text("\n".join(SAMPLES[10 * k:10 * k + 10]) + "\n")
        assert main([*personalize, "--samples-file", str(tmp / f"s{k}.txt"), "--out", str(tmp / f"s{k}.h5")]) == 0
        chunks.append(str(tmp / f"s{k}.h5"))
    assert main(["merge", "--inputs", *chunks, "--out", str(tmp / "chunked.h5")]) == 0
    return tmp, personalize


def _planned(tmp, personalize, windows_per_part: int, tag: str, order=lambda parts: parts):
    plan_file = tmp / f"{tag}.plan.h5"
    assert main(["plan", *COMMON, "--loci", str(tmp / "loci.tsv"), "--samples-file", str(tmp / "all.txt"),
                 "--window-bp", "4096", "--windows-per-part", str(windows_per_part), "--out", str(plan_file)]) == 0
    plan = read_plan(plan_file)
    parts = []
    for k in range(plan.n_parts):
        out = tmp / f"{tag}.part{k}.h5"
        assert main([*personalize, "--plan", str(plan_file), "--part", str(k), "--out", str(out)]) == 0
        parts.append(str(out))
    assert main(["merge", "--plan", str(plan_file), "--inputs", *order(parts), "--out", str(tmp / f"{tag}.h5")]) == 0
    return plan, parts, read_personalized_store(tmp / f"{tag}.h5")


def test_passes_equal_the_distinct_windows_and_values_equal_personalizing_everyone(setup):
    tmp, personalize = setup
    whole = read_personalized_store(tmp / "whole.h5")
    chunked = read_personalized_store(tmp / "chunked.h5")
    plan, parts, planned = _planned(tmp, personalize, 7, "small")
    assert plan.n_parts > 3
    passes = sum(len(read_part(p).window) for p in parts)
    assert passes == int(whole.n_unique_windows.sum()) == int(plan.n_distinct.sum())   # exactly the distinct ones
    assert passes < int(chunked.n_unique_windows.sum())    # per sample chunk, shared haplotypes were predicted again
    np.testing.assert_array_equal(planned.n_unique_windows, whole.n_unique_windows)
    np.testing.assert_allclose(planned.prediction, whole.prediction, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(planned.reference, whole.reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(planned.prediction, chunked.prediction, rtol=1e-5, atol=1e-6)
    assert planned.samples == SAMPLES and planned.meta["model"] == whole.meta["model"]


def test_parts_merge_in_any_order_and_a_missing_part_is_named(setup, capsys):
    tmp, personalize = setup
    _planned(tmp, personalize, 9, "a")
    _planned(tmp, personalize, 9, "b", order=lambda parts: parts[::-1])
    assert filecmp.cmp(tmp / "a.h5", tmp / "b.h5", shallow=False)
    one = _planned(tmp, personalize, 100000, "one")[1]
    assert len(one) == 1                                  # every window of the chunk in one task
    parts = sorted(str(p) for p in tmp.glob("a.part*.h5"))
    assert main(["merge", "--plan", str(tmp / "a.plan.h5"), "--inputs", *parts[1:], "--out", str(tmp / "x.h5")]) == 1
    assert "a distinct window is in no part; a part is missing" in capsys.readouterr().err
    assert main(["merge", "--plan", str(tmp / "a.plan.h5"), "--inputs", *parts, parts[0], "--out",
                 str(tmp / "x.h5")]) == 1
    assert "is in more than one part" in capsys.readouterr().err
