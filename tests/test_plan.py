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
from enpact.models import load_model
from enpact.personalize import personalize
from enpact.plan import read_part, read_plan
from enpact.store import read_personalized_store
from enpact.variants import VcfReader

SAMPLES = [f"IND{i:03d}" for i in range(1, 31)]
COMMON = ["--fasta", str(DEMO / "genome.fa"), "--vcf", str(DEMO / "genotypes.vcf.gz")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Eight demo loci, a model, and as references (the library's direct personalization, no plan): every
    individual at once, and the same individuals in three sample chunks of ten."""
    tmp = tmp_path_factory.mktemp("plan")
    genome, loci, predictor = demo_model(tmp / "model")
    subset = pd.concat([loci[loci["chrom"] == "chr1"].iloc[:4], loci[loci["chrom"] == "chr2"].iloc[:4]])
    write_loci(subset, tmp / "loci.tsv")
    (tmp / "all.txt").write_text("\n".join(SAMPLES) + "\n")
    model = load_model(tmp / "model")
    vcf = lambda samples: VcfReader(DEMO / "genotypes.vcf.gz", samples)  # noqa: E731
    whole = personalize(genome, subset, vcf(SAMPLES), model, predictor, progress=False)
    chunked = [personalize(genome, subset, vcf(SAMPLES[10 * k:10 * k + 10]), model, predictor, progress=False)
               for k in range(3)]
    personalize_options = ["--model", str(tmp / "model"), "--device", "cpu", "--batch-size", "16", "--no-progress"]
    return tmp, personalize_options, whole, chunked


def _planned(tmp, options, windows_per_part: int, tag: str, order=lambda parts: parts):
    plan_file = tmp / f"{tag}.plan.h5"
    assert main(["plan", *COMMON, "--loci", str(tmp / "loci.tsv"), "--samples-file", str(tmp / "all.txt"),
                 "--window-bp", "4096", "--windows-per-part", str(windows_per_part), "--out", str(plan_file)]) == 0
    plan = read_plan(plan_file)
    parts = []
    for k in range(plan.n_parts):
        out = tmp / f"{tag}.part{k}.h5"
        assert main(["personalize", *COMMON, "--loci", str(tmp / "loci.tsv"), *options, "--plan", str(plan_file),
                     "--part", str(k), "--out", str(out)]) == 0
        parts.append(str(out))
    assert main(["merge", "--plan", str(plan_file), "--inputs", *order(parts), "--out", str(tmp / f"{tag}.h5")]) == 0
    return plan, parts, read_personalized_store(tmp / f"{tag}.h5")


def test_passes_equal_the_distinct_windows_and_values_equal_personalizing_everyone(setup):
    tmp, options, whole, chunked = setup
    plan, parts, planned = _planned(tmp, options, 7, "small")
    assert plan.n_parts > 3
    passes = sum(len(read_part(p).window) for p in parts)
    assert passes == int(whole.n_unique_windows.sum()) == int(plan.n_distinct.sum())   # exactly the distinct ones
    # per sample chunk (how personalization was scattered before plans), shared haplotypes were predicted again
    assert passes < sum(int(c.n_unique_windows.sum()) for c in chunked)
    np.testing.assert_array_equal(planned.n_unique_windows, whole.n_unique_windows)
    np.testing.assert_allclose(planned.prediction, whole.prediction, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(planned.reference, whole.reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(planned.prediction, np.concatenate([c.prediction for c in chunked], axis=1),
                               rtol=1e-5, atol=1e-6)
    assert planned.samples == SAMPLES and planned.meta["model"] == whole.meta["model"]


def test_parts_merge_in_any_order_and_a_missing_part_is_named(setup, capsys):
    tmp, options = setup[:2]
    _planned(tmp, options, 9, "a")
    _planned(tmp, options, 9, "b", order=lambda parts: parts[::-1])
    assert filecmp.cmp(tmp / "a.h5", tmp / "b.h5", shallow=False)
    one = _planned(tmp, options, 100000, "one")[1]
    assert len(one) == 1                                  # every window of the chunk in one task
    parts = sorted(str(p) for p in tmp.glob("a.part*.h5"))
    assert main(["merge", "--plan", str(tmp / "a.plan.h5"), "--inputs", *parts[1:], "--out", str(tmp / "x.h5")]) == 1
    assert "a distinct window is in no part; a part is missing" in capsys.readouterr().err
    assert main(["merge", "--plan", str(tmp / "a.plan.h5"), "--inputs", *parts, parts[0], "--out",
                 str(tmp / "x.h5")]) == 1
    assert "is in more than one part" in capsys.readouterr().err


def test_personalize_needs_a_plan_and_its_part(setup, capsys):
    """One way to personalize: the distinct windows of a plan's part (the individuals are the plan's)."""
    tmp, options = setup[:2]
    with pytest.raises(SystemExit):
        main(["personalize", *COMMON, "--loci", str(tmp / "loci.tsv"), *options, "--out", str(tmp / "x.h5")])
    assert "the following arguments are required: --plan, --part" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["personalize", *COMMON, "--loci", str(tmp / "loci.tsv"), *options, "--plan", str(tmp / "a.plan.h5"),
              "--part", "0", "--samples", "IND001", "--out", str(tmp / "x.h5")])
    assert "unrecognized arguments: --samples IND001" in capsys.readouterr().err
