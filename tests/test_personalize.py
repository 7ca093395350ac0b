"""Personalized predictions: chunking, merging, reference equivalence, exports."""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO, write_vcf
from enpact.cli import main
from enpact.expression import feature_means, read_expression
from enpact.genome import Genome
from enpact.loci import build_loci, write_loci
from enpact.models import create_model
from enpact.models.base import FeatureSpec
from enpact.personalize import personalize
from enpact.predictors import load_predictor
from enpact.store import read_personalized_store
from enpact.variants import VcfReader

WEIGHTS = str(DEMO / "enformer_tiny")
SAMPLES = [f"IND{i:03d}" for i in range(1, 13)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Demo loci (first 8 genes of chr1 and chr2), a model trained on 60 reference windows, files on disk."""
    tmp = tmp_path_factory.mktemp("personalize")
    genome = Genome(DEMO / "genome.fa")
    matrix = read_expression(DEMO / "expression.tsv")
    loci, _ = build_loci(DEMO / "genes.tsv", "tsv", matrix.index.tolist(), genome.chroms, train="chr1,chr2,chr3")
    predictor = load_predictor("enformer", weights=WEIGHTS, device="cpu", batch_size=16)
    train = loci.head(60)
    X = predictor.predict(genome.windows(train["chrom"].tolist(), train["center"].to_numpy(), predictor.window_bp))
    model = create_model("elastic_net", FeatureSpec.from_dict(predictor.describe()), folds=3, seed=0)
    model.fit(X, feature_means(matrix).reindex(train["locus_id"]).to_numpy())
    model.save(tmp / "model")
    subset = pd.concat([loci[loci["chrom"] == "chr1"].iloc[:4], loci[loci["chrom"] == "chr2"].iloc[:4]])
    write_loci(subset, tmp / "loci.tsv")
    write_loci(subset.iloc[:3], tmp / "loci_a.tsv")
    write_loci(subset.iloc[3:], tmp / "loci_b.tsv")
    (tmp / "s_a.txt").write_text("\n".join(SAMPLES[:5]) + "\n")
    (tmp / "s_b.txt").write_text("\n".join(SAMPLES[5:]) + "\n")
    (tmp / "s_all.txt").write_text("\n".join(SAMPLES) + "\n")
    return tmp, genome, subset, model, predictor


def _run(tmp, loci, samples, out, *extra):
    argv = ["personalize", "--fasta", str(DEMO / "genome.fa"), "--loci", str(tmp / loci), "--vcf",
            str(DEMO / "genotypes.vcf.gz"), "--samples-file", str(tmp / samples), "--model", str(tmp / "model"),
            "--device", "cpu", "--batch-size", "16", "--no-progress", "--out", str(tmp / out), *extra]
    assert main(argv) == 0


def test_chunks_merged_equal_the_whole(setup):
    tmp = setup[0]
    _run(tmp, "loci.tsv", "s_all.txt", "whole.h5", "--export-matrix", str(tmp / "whole.tsv"))
    for loci in ("loci_a", "loci_b"):
        for samples in ("s_a", "s_b"):
            _run(tmp, f"{loci}.tsv", f"{samples}.txt", f"{loci}.{samples}.h5")
    pieces = [str(tmp / f"{l}.{s}.h5") for l in ("loci_a", "loci_b") for s in ("s_a", "s_b")]
    assert main(["merge", "--inputs", *pieces, "--out", str(tmp / "merged.h5")]) == 0
    assert main(["merge", "--inputs", *reversed(pieces), "--out", str(tmp / "merged2.h5"),
                 "--export-matrix", str(tmp / "merged.tsv")]) == 0
    assert filecmp.cmp(tmp / "merged.h5", tmp / "merged2.h5", shallow=False)
    whole, merged = read_personalized_store(tmp / "whole.h5"), read_personalized_store(tmp / "merged.h5")
    order = [whole.locus_ids.index(l) for l in merged.locus_ids]
    np.testing.assert_allclose(merged.prediction, whole.prediction[order], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(merged.reference, whole.reference[order], rtol=1e-6, atol=1e-6)
    exported = read_expression(tmp / "whole.tsv")
    np.testing.assert_allclose(exported.to_numpy(), whole.individual_values(), rtol=1e-5)
    assert list(exported.columns) == SAMPLES


def test_personalized_values_equal_model_on_predicted_haplotype_windows(setup):
    tmp, genome, subset, model, predictor = setup
    store = personalize(genome, subset, VcfReader(DEMO / "genotypes.vcf.gz", SAMPLES[:3]), model, predictor,
                        save_features=True, progress=False)
    features = store.features
    assert len(features.features) == int(store.n_unique_windows.sum())  # one copy per distinct window
    expected = model.predict(features.features)[features.haplotype_row]
    np.testing.assert_allclose(store.prediction, expected, rtol=1e-6)
    np.testing.assert_allclose(store.reference, model.predict(features.features[features.reference_row]), rtol=1e-6)
    assert store.individual_values().shape == (len(subset), 3)
    assert np.ptp(store.prediction) > 0  # variants do change predictions


def test_homozygous_reference_sample_gets_the_reference_prediction(setup, tmp_path):
    tmp, genome, subset, model, predictor = setup
    records = []
    for chrom, center in zip(subset["chrom"], subset["center"]):
        for offset in (-300, -20, 15, 700):
            pos = int(center) + offset
            ref = genome.fetch_string(chrom, pos, pos + 1)
            alt = "A" if ref != "A" else "C"
            records.append("\t".join([chrom, str(pos + 1), ".", ref, alt, ".", ".", ".", "GT", "0|0", "1|0", "1|1"]))
    vcf = write_vcf(tmp_path / "v.vcf", dict(genome.lengths), ["REF", "HET", "HOM"], records)
    store = personalize(genome, subset, VcfReader(vcf), model, predictor, progress=False)
    assert np.array_equal(store.prediction[:, 0, 0], store.reference)
    assert np.array_equal(store.prediction[:, 0, 1], store.reference)
    assert np.array_equal(store.prediction[:, 1, 1], store.reference)  # HET haplotype 2 is reference
    assert np.array_equal(store.prediction[:, 1, 0], store.prediction[:, 2, 0])  # same applied variants
    assert not np.array_equal(store.prediction[:, 2, 0], store.reference)
    assert store.n_unique_windows.tolist() == [2] * len(subset)


def test_model_refuses_features_made_differently(setup):
    tmp, genome, subset, model, _ = setup
    other = load_predictor("enformer", weights=WEIGHTS, device="cpu", bins=2)
    with pytest.raises(Exception, match="features were made with bins 2, the model expects 4"):
        personalize(genome, subset, VcfReader(DEMO / "genotypes.vcf.gz", SAMPLES[:2]), model, other, progress=False)
