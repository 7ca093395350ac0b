"""Personalized predictions: merging, reference equivalence, exports, precision, rescoring."""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO, demo_model, personalize_planned, write_vcf
from enpact.cli import main
from enpact.expression import feature_means, read_expression
from enpact.loci import build_loci, write_loci
from enpact.models import create_model, load_model
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
    genome, loci, predictor = demo_model(tmp / "model", n_train=60)
    model = load_model(tmp / "model")
    subset = pd.concat([loci[loci["chrom"] == "chr1"].iloc[:4], loci[loci["chrom"] == "chr2"].iloc[:4]])
    write_loci(subset, tmp / "loci.tsv")
    write_loci(subset.iloc[:3], tmp / "loci_a.tsv")
    write_loci(subset.iloc[3:], tmp / "loci_b.tsv")
    (tmp / "s_a.txt").write_text("\n".join(SAMPLES[:5]) + "\n")
    (tmp / "s_b.txt").write_text("\n".join(SAMPLES[5:]) + "\n")
    (tmp / "s_all.txt").write_text("\n".join(SAMPLES) + "\n")
    return tmp, genome, subset, model, predictor


def _run(tmp, loci, samples, out, *options, model=None, export_matrix=None):
    """Personalize a loci chunk for the individuals of a sample file: plan, its parts, merged."""
    assert personalize_planned(tmp / out, tmp / loci, [str(model or tmp / "model")], samples_file=tmp / samples,
                               options=options, export_matrix=export_matrix) == 0


def test_stores_of_other_loci_and_individuals_merged_equal_the_whole(setup):
    tmp = setup[0]
    _run(tmp, "loci.tsv", "s_all.txt", "whole.h5", export_matrix=tmp / "whole.tsv")
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


def test_a_model_refuses_features_made_at_another_precision(setup, capsys):
    """Training and personalized features are made alike: fp32 by default, another precision only when allowed."""
    tmp, genome, subset, model, predictor = setup
    assert model.feature_spec.precision == "fp32" and predictor.describe()["precision"] == "fp32"
    capsys.readouterr()
    run = lambda *options: personalize_planned(tmp / "bf16.h5", tmp / "loci_a.tsv", [str(tmp / "model")],  # noqa: E731
                                               samples_file=tmp / "s_a.txt", options=["--precision", "bf16", *options])
    assert run() == 1
    error = capsys.readouterr().err
    assert "features were made at precision bf16, the model was trained on fp32 features" in error
    assert not (tmp / "bf16.part0.h5").exists() and not (tmp / "bf16.h5").exists()
    assert run("--allow-precision-mismatch") == 0
    assert read_personalized_store(tmp / "bf16.h5").meta["predictor"]["precision"] == "bf16"


def test_precision_names_and_tf32(setup):
    """fp32 is the default (auto is an alias); TF32 matmuls only when asked for."""
    import torch

    from enpact.predictors.base import resolve_precision

    assert resolve_precision("auto") == resolve_precision("fp32") == "fp32"
    load_predictor("enformer", weights=WEIGHTS, device="cpu", precision="tf32")
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    load_predictor("enformer", weights=WEIGHTS, device="cpu")
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32


def test_precision_audit_against_fp32(setup, tmp_path, capsys):
    """fp32 against itself agrees exactly; bf16 is compared locus by locus (an independent recomputation here).
    Without --samples-file, as the README runs it: individuals are sampled from the VCF's."""
    from enpact.precision_audit import compare_with_fp32

    tmp = setup[0]
    out = tmp_path / "audit.tsv"
    assert main(["-q", "precision-audit", "--fasta", str(DEMO / "genome.fa"), "--loci", str(tmp / "loci.tsv"),
                 "--vcf", str(DEMO / "genotypes.vcf.gz"),
                 "--model", str(tmp / "model"), "--precisions", "bf16", "--n-loci", "8", "--n-samples", "12",
                 "--device", "cpu", "--out", str(out)]) == 0
    summary = pd.read_csv(out, sep="\t").set_index("precision")
    assert list(summary.index) == ["fp32", "bf16"] and summary.loc["fp32", "median_r"] == 1.0
    per_locus = pd.read_csv(tmp_path / "audit.loci.tsv", sep="\t")
    assert len(per_locus) == 8 and (per_locus["precision"] == "bf16").all()
    assert summary.loc["bf16", "median_r"] == pytest.approx(np.nanmedian(per_locus["r_with_fp32"]), rel=1e-5)
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 40))
    b = a + rng.normal(scale=0.5, size=(3, 40))
    r, error, sd = compare_with_fp32(a, b)
    assert np.allclose(r, [np.corrcoef(a[i], b[i])[0, 1] for i in range(3)])
    assert np.allclose(error, np.sqrt(((b - a) ** 2).mean(axis=1)) / a.std(axis=1))


# ---------------------------------------------------------------------------------------------------------
# re-scoring stored features without the predictor (`enpact rescore`)


def _second_model(setup, directory):
    """Another elastic net on the same training features (another penalty mix): what a retrained model is."""
    tmp, genome, subset, model, predictor = setup
    if not (directory / "model.json").exists():
        matrix = read_expression(DEMO / "expression.tsv")
        loci, _ = build_loci(DEMO / "genes.tsv", "tsv", matrix.index.tolist(), genome.chroms, train="chr1,chr2,chr3")
        train = loci.head(60)
        X = predictor.predict(genome.windows(train["chrom"].tolist(), train["center"].to_numpy(), predictor.window_bp))
        other = create_model("elastic_net", model.feature_spec, folds=3, seed=1, l1_ratio=0.9)
        other.fit(X, feature_means(matrix).reindex(train["locus_id"]).to_numpy()).save(directory)
    return directory


def test_rescoring_stored_features_equals_personalizing_with_the_new_model(setup):
    tmp = setup[0]
    second = _second_model(setup, tmp / "model2")
    _run(tmp, "loci_a.tsv", "s_a.txt", "with_features.h5", "--save-features")
    _run(tmp, "loci_a.tsv", "s_a.txt", "model2.h5", model=second)   # the predictor, the new model
    assert main(["rescore", "--personalized", str(tmp / "with_features.h5"), "--model", str(second),
                 "--out", str(tmp / "rescored.h5"), "--export-matrix", str(tmp / "rescored.tsv")]) == 0
    rescored, direct = read_personalized_store(tmp / "rescored.h5"), read_personalized_store(tmp / "model2.h5")
    np.testing.assert_array_equal(rescored.prediction, direct.prediction)
    np.testing.assert_array_equal(rescored.reference, direct.reference)
    assert rescored.meta["model"] == direct.meta["model"] and rescored.features is None
    first = read_personalized_store(tmp / "with_features.h5")
    assert not np.array_equal(first.prediction, rescored.prediction)   # the new model does predict otherwise
    np.testing.assert_allclose(read_expression(tmp / "rescored.tsv").to_numpy(), rescored.individual_values(),
                               rtol=1e-5)


def test_rescoring_a_merged_store_follows_its_maps(setup):
    from enpact.personalize import rescore

    tmp, _, _, model, _ = setup
    pieces = []
    for samples in ("s_a", "s_b"):
        _run(tmp, "loci_b.tsv", f"{samples}.txt", f"f.{samples}.h5", "--save-features")
        pieces.append(str(tmp / f"f.{samples}.h5"))
    assert main(["merge", "--inputs", *pieces, "--out", str(tmp / "f.merged.h5")]) == 0
    merged = read_personalized_store(tmp / "f.merged.h5")
    again = rescore(merged, load_model(tmp / "model"))   # the model that made it: the same values back
    np.testing.assert_array_equal(again.prediction, merged.prediction)
    np.testing.assert_array_equal(again.reference, merged.reference)


def test_rescoring_refuses_incompatible_models_and_stores_without_features(setup, capsys):
    tmp, genome, subset, model, predictor = setup
    _run(tmp, "loci_a.tsv", "s_a.txt", "plain.h5")
    _run(tmp, "loci_a.tsv", "s_a.txt", "kept.h5", "--save-features")
    fewer_bins = create_model("elastic_net", FeatureSpec.from_dict({**model.feature_spec.to_dict(), "bins": 2}))
    fewer_bins.coef, fewer_bins.intercept = model.coef, model.intercept
    fewer_bins.feature_means, fewer_bins.feature_sds = model.feature_means, model.feature_sds
    fewer_bins._set_predictor()
    fewer_bins.fitted = True
    fewer_bins.save(tmp / "model_bins2")
    capsys.readouterr()
    for store, other, message in (
        ("plain.h5", tmp / "model", "holds no predictor features; personalize with --save-features"),
        ("kept.h5", tmp / "model_bins2", "features were made with bins 4, the model expects 2"),
    ):
        assert main(["rescore", "--personalized", str(tmp / store), "--model", str(other), "--out",
                     str(tmp / "refused.h5")]) == 1
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and message in error[0], error
        assert not (tmp / "refused.h5").exists()
