"""Predictor layer (tiny Enformer through the real loading code) and the HDF5 stores."""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import random_sequence, write_fasta, write_vcf
from enpact.cli import main
from enpact.errors import EnpactError
from enpact.predictors import available_predictors, load_predictor
from enpact.predictors.base import parse_track_selection
from enpact.store import (
    PersonalizedStore,
    merge_personalized_stores,
    read_feature_store,
    read_personalized_store,
    write_personalized_store,
)


def _one_hot(windows: np.ndarray) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.from_numpy(windows).long(), 5)[..., :4].float()


def test_enformer_central_bins_and_tracks_equal_the_full_model_output(tiny_enformer):
    from enformer_pytorch import Enformer

    reference_model = Enformer.from_pretrained(str(tiny_enformer)).eval()
    windows = np.random.default_rng(0).integers(0, 5, (5, 1024)).astype(np.uint8)
    with torch.inference_mode():
        full = reference_model(_one_hot(windows), head="human").numpy()  # (5, 4 bins, 8 tracks)
    per_bin = load_predictor("enformer", weights=str(tiny_enformer), device="cpu", aggregate="none", batch_size=2)
    np.testing.assert_allclose(per_bin.predict(windows), full, rtol=1e-5, atol=1e-6)
    picked = load_predictor("enformer", weights=str(tiny_enformer), device="cpu", bins=2, tracks="1,3-4")
    expected = full[:, 1:3][:, :, [1, 3, 4]].mean(axis=1, keepdims=True)
    np.testing.assert_allclose(picked.predict(windows), expected, rtol=1e-5, atol=1e-6)
    assert picked.track_names == ["human_0001", "human_0003", "human_0004"]
    assert picked.n_bins == 1 and per_bin.n_bins == 4


def test_n_bases_are_all_zero_inputs(tiny_enformer):
    predictor = load_predictor("enformer", weights=str(tiny_enformer), device="cpu")
    from enformer_pytorch import Enformer

    model = Enformer.from_pretrained(str(tiny_enformer)).eval()
    windows = np.full((1, 1024), 4, dtype=np.uint8)
    with torch.inference_mode():
        expected = model(torch.zeros(1, 1024, 4), head="human").mean(dim=1).numpy()
    np.testing.assert_allclose(predictor.predict(windows)[:, 0], expected, rtol=1e-5, atol=1e-6)


def test_predictor_errors_are_clear(tiny_enformer, tmp_path):
    with pytest.raises(EnpactError, match="no config.json"):
        load_predictor("enformer", weights=str(tmp_path), device="cpu")
    with pytest.raises(EnpactError, match="--bins must be between 1 and 4"):
        load_predictor("enformer", weights=str(tiny_enformer), device="cpu", bins=5)
    with pytest.raises(EnpactError, match="unknown predictor 'nosuch'; available: borzoi, enformer"):
        load_predictor("nosuch", weights="x")
    with pytest.raises(EnpactError, match="index 9 is out of range"):
        parse_track_selection("9", ["a", "b"])
    assert {"enformer", "borzoi"} <= set(available_predictors())


def test_predict_cli_writes_store_with_deduplicated_rows(tiny_enformer, tmp_path):
    chrom = random_sequence(8000, 11)
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": chrom})
    records = []
    for pos in (1500, 1510, 4000, 4600):
        alt = "A" if chrom[pos - 1] != "A" else "C"
        records.append("\t".join(["chr1", str(pos), ".", chrom[pos - 1], alt, ".", ".", ".", "GT",
                                  "0|1", "1|1", "0|0"]))
    vcf = write_vcf(tmp_path / "v.vcf", {"chr1": 8000}, ["A", "B", "C"], records)
    loci = tmp_path / "loci.tsv"
    pd.DataFrame({"locus_id": ["L1", "L2", "L3"], "chrom": ["chr1"] * 3, "center": [1500, 4300, 7000]}).to_csv(
        loci, sep="\t", index=False)
    out = tmp_path / "pred.h5"
    rc = main(["predict", "--fasta", str(fasta), "--loci", str(loci), "--vcf", str(vcf), "--weights",
               str(tiny_enformer), "--device", "cpu", "--no-progress", "--out", str(out)])
    assert rc == 0
    store = read_feature_store(out)
    assert store.samples == ["A", "B", "C"] and store.locus_ids == ["L1", "L2", "L3"]
    # L1: ref, A/2 = B/1 = B/2 (both variants) -> 2 rows; L2 same; L3: no variants within 512 bp -> 1 row
    assert [int((store.row_locus == i).sum()) for i in range(3)] == [2, 2, 1]
    assert store.haplotype_row[2].max() == store.reference_row[2]
    predictor = load_predictor("enformer", weights=str(tiny_enformer), device="cpu")
    from enpact.genome import Genome

    reference = Genome(fasta).windows(["chr1"] * 3, np.array([1500, 4300, 7000]), 1024)
    np.testing.assert_allclose(store.reference_features(), predictor.predict(reference), rtol=1e-5, atol=1e-6)
    assert store.meta["predictor"]["weights"] == str(tiny_enformer)


def _chunk(loci, samples, seed):
    rng = np.random.default_rng(seed)
    return PersonalizedStore(list(loci), list(samples), rng.normal(size=(len(loci), len(samples), 2)).astype(np.float32),
                             np.arange(len(loci), dtype=np.float32), {"model": {"id": "m"}, "predictor": {"w": 1}},
                             np.ones(len(loci), np.int32))


def test_merge_is_order_independent_and_checks_coverage(tmp_path):
    parts = {}
    for name, (loci, samples) in {"a": (["L1", "L2"], ["S1", "S2"]), "b": (["L1", "L2"], ["S3"]),
                                  "c": (["L3"], ["S1", "S2", "S3"])}.items():
        chunk = _chunk(loci, samples, ord(name))
        chunk.reference = np.array([{"L1": 1.0, "L2": 2.0, "L3": 3.0}[l] for l in loci], np.float32)
        parts[name] = tmp_path / f"{name}.h5"
        write_personalized_store(parts[name], chunk)
    merge_personalized_stores([parts["a"], parts["b"], parts["c"]], tmp_path / "m1.h5")
    merge_personalized_stores([parts["c"], parts["a"], parts["b"]], tmp_path / "m2.h5")
    assert filecmp.cmp(tmp_path / "m1.h5", tmp_path / "m2.h5", shallow=False)
    merged = read_personalized_store(tmp_path / "m1.h5")
    assert merged.locus_ids == ["L1", "L2", "L3"] and merged.samples == ["S1", "S2", "S3"]
    a = read_personalized_store(parts["a"])
    np.testing.assert_array_equal(merged.prediction[:2, :2], a.prediction)
    partial = _write(tmp_path, ["L3"], ["S2", "S3"])
    with pytest.raises(EnpactError, match="locus L3, sample S1 is in no chunk"):
        merge_personalized_stores([parts["a"], parts["b"], partial], tmp_path / "m3.h5")
    assert not (tmp_path / "m3.h5").exists()
    with pytest.raises(EnpactError, match="is in more than one chunk"):
        merge_personalized_stores([parts["a"], parts["a"], parts["b"], parts["c"]], tmp_path / "m4.h5")


def _write(tmp_path, loci, samples):
    path = tmp_path / "partial.h5"
    chunk = _chunk(loci, samples, 5)
    chunk.reference = np.array([3.0], np.float32)
    write_personalized_store(path, chunk)
    return path


def test_reading_a_wrong_kind_of_store_is_an_error(tmp_path):
    path = tmp_path / "p.h5"
    write_personalized_store(path, _chunk(["L1"], ["S1"], 1))
    with pytest.raises(EnpactError, match="expected a features store, found 'personalized'"):
        read_feature_store(path)
    assert isinstance(read_personalized_store(path), PersonalizedStore)


def test_merge_tolerates_rounding_between_stores_but_not_different_models(tmp_path):
    a, b = _chunk(["L1"], ["S1"], 1), _chunk(["L1"], ["S2"], 2)
    a.reference = np.array([1.2345678], np.float32)
    b.reference = np.array([np.nextafter(np.float32(1.2345678), np.float32(2))], np.float32)  # batch rounding
    write_personalized_store(tmp_path / "a.h5", a)
    write_personalized_store(tmp_path / "b.h5", b)
    merged = merge_personalized_stores([tmp_path / "b.h5", tmp_path / "a.h5"], tmp_path / "m.h5")
    assert merged.reference[0] == a.reference[0]  # deterministic: the first chunk in sorted order wins
    b.reference = np.array([1.5], np.float32)
    write_personalized_store(tmp_path / "b.h5", b)
    with pytest.raises(EnpactError, match="reference predictions differ"):
        merge_personalized_stores([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "m2.h5")


@pytest.mark.parametrize("window_bp, bin_bp", [(196_608, 128), (4_096, 128), (524_288, 32)])
def test_central_bins_hold_the_centre_and_are_symmetric(window_bp, bin_bp):
    """The chosen bins include the bin holding the locus centre (window_bp // 2), with as many bins before as after
    it (odd counts) or as many before as after the centre position (even counts)."""
    from enpact.predictors.base import central_bin_start

    centre = window_bp // 2
    for bins in range(1, 9):
        chosen = np.arange(central_bin_start(window_bp, bin_bp, bins), central_bin_start(window_bp, bin_bp, bins) + bins)
        starts, ends = chosen * bin_bp, (chosen + 1) * bin_bp
        holds = np.flatnonzero((starts <= centre) & (centre < ends))
        assert len(holds) == 1, bins   # the centre base is in one of the chosen bins
        before, after = (ends <= centre).sum(), (starts > centre).sum()
        if bins % 2:
            assert before == after, (bins, before, after)
        else:
            assert (ends <= centre).sum() == (starts >= centre).sum(), bins
