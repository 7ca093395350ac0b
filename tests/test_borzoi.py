"""The borzoi predictor: a tiny random Borzoi in the real checkpoint format, loaded through the real code path and
checked against borzoi-pytorch's own forward pass; stranded track pairs; window, bins and default weights from the
predictor; `enpact run` end to end with `predictor: borzoi`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from enpact.checks import predictor_window_bp
from enpact.cli import main
from enpact.errors import EnpactError
from enpact.predictors import load_predictor
from enpact.predictors import borzoi as borzoi_module
from enpact.predictors.base import SequencePredictor

RNA_PLUS, RNA_MINUS = "ENCFF281BWX+", "ENCFF281BWX-"


@pytest.fixture(scope="session")
def tiny_borzoi(tmp_path_factory) -> Path:
    """The demo's tiny random Borzoi, written by `enpact demo-weights borzoi --out DIR`."""
    out = tmp_path_factory.mktemp("borzoi") / "borzoi_tiny"
    assert main(["demo-weights", "borzoi", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def targets() -> pd.DataFrame:
    """borzoi-pytorch's track table, read here independently of the predictor."""
    import borzoi_pytorch

    return pd.read_table(Path(borzoi_pytorch.__file__).parent / "precomputed" / "targets.txt", index_col=0)


def package_forward(weights: Path, windows: np.ndarray) -> np.ndarray:
    """borzoi-pytorch's own forward pass: (batch, tracks, bins) for every bin (the tiny checkpoint returns all)."""
    from borzoi_pytorch import Borzoi

    model = Borzoi.from_pretrained(str(weights)).eval()
    one_hot = F.one_hot(torch.from_numpy(windows).long(), num_classes=5)[..., :4].float().transpose(1, 2)
    with torch.no_grad():
        return model(one_hot).numpy()


def random_windows(n: int, length: int, seed: int) -> np.ndarray:
    """Random ACGT windows with a few N."""
    windows = np.random.default_rng(seed).integers(0, 4, (n, length)).astype(np.uint8)
    windows[:, :10] = 4
    return windows


# -------------------------------------------------------------------------------------------------------------
# the checkpoint and the forward pass


def test_tiny_checkpoint_is_a_real_borzoi_checkpoint_written_once(tiny_borzoi, tmp_path):
    config = json.loads((tiny_borzoi / "config.json").read_text())
    assert config["model_type"] == "borzoi" and config["bins_to_return"] == 4096 // 32
    assert (tiny_borzoi / "model.safetensors").is_file()
    assert json.loads((tiny_borzoi / "enpact_predictor.json").read_text())["window_bp"] == 4096
    before = (tiny_borzoi / "model.safetensors").stat().st_mtime_ns
    assert borzoi_module.write_tiny_checkpoint(tiny_borzoi) == tiny_borzoi          # kept, not rewritten
    assert (tiny_borzoi / "model.safetensors").stat().st_mtime_ns == before
    other = tmp_path / "other"
    borzoi_module.write_tiny_checkpoint(other, window_bp=2048)
    with pytest.raises(EnpactError, match="holds another checkpoint"):
        borzoi_module.write_tiny_checkpoint(other)


def test_predictor_takes_window_bins_and_tracks_from_the_checkpoint(tiny_borzoi, targets):
    predictor = load_predictor("borzoi", weights=str(tiny_borzoi), device="cpu")
    assert (predictor.window_bp, predictor.bin_bp, predictor.bins) == (4096, 32, 4)
    assert predictor.track_names == targets["identifier"].tolist() and len(predictor.track_names) == 7611
    assert predictor.stranded and predictor.describe()["options"] == {"head": "human"}
    assert predictor.describe()["bin_bp"] == 32


def test_features_equal_the_packages_forward_pass(tiny_borzoi, targets):
    """Central bins (mean and each) of the selected tracks, by name, index and range, as borzoi-pytorch computes
    them with its own forward pass over the whole window."""
    windows = random_windows(3, 4096, 1)
    reference = package_forward(tiny_borzoi, windows)            # (3, 7611, 128)
    assert np.ptp(reference[:, :, 60:68]) > 0.1                    # outputs depend on sequence and track
    selected = [int(np.flatnonzero(targets["identifier"] == RNA_PLUS)[0]), 5, 6, 7, 100]
    spec = f"{RNA_PLUS},5-7,100"
    start = 4096 // 2 // 32 - 2                                    # the 4 bins around the centre: 62..65
    for aggregate in ("mean", "none"):
        predictor = load_predictor("borzoi", weights=str(tiny_borzoi), device="cpu", tracks=spec,
                                   aggregate=aggregate, batch_size=2)
        got = predictor.predict(windows, ["+"] * 3)
        want = reference[:, selected, start : start + 4].transpose(0, 2, 1)
        if aggregate == "mean":
            want = want.mean(axis=1, keepdims=True)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_minus_strand_loci_read_the_strand_mate_of_each_track(tiny_borzoi, targets):
    """For a minus-strand locus a stranded track is replaced by its mate (targets.txt strand_pair); unstranded
    tracks (their own mate) and loci without a strand ('.', '+') read the track itself."""
    plus = int(np.flatnonzero(targets["identifier"] == RNA_PLUS)[0])
    minus = int(np.flatnonzero(targets["identifier"] == RNA_MINUS)[0])
    dnase = int(np.flatnonzero(targets["description"].str.startswith("DNASE:"))[0])
    assert targets["strand_pair"].iloc[plus] == minus and targets["strand_pair"].iloc[dnase] == dnase
    windows = random_windows(4, 4096, 2)
    reference = package_forward(tiny_borzoi, windows)[:, :, 62:66].mean(axis=2)   # (4, 7611)
    predictor = load_predictor("borzoi", weights=str(tiny_borzoi), device="cpu", tracks=f"{RNA_MINUS},{RNA_PLUS},{dnase}")
    got = predictor.predict(windows, ["+", "-", ".", "-"])[:, 0]
    np.testing.assert_allclose(got[[0, 2]], reference[[0, 2]][:, [minus, plus, dnase]], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[[1, 3]], reference[[1, 3]][:, [plus, minus, dnase]], rtol=1e-5, atol=1e-6)
    assert not np.allclose(reference[:, plus], reference[:, minus])      # the swap is visible


def test_predict_loci_reads_each_locus_strand_from_the_loci_table(tiny_borzoi):
    """Two loci at the same centre, one per strand (and one without): the minus-strand locus's RNA+ feature is the
    plus-strand locus's RNA- feature (the pipeline passes the loci table's strand down to the predictor)."""
    from enpact.genome import Genome
    from enpact.params import demo_dir
    from enpact.predict import predict_loci

    loci = pd.DataFrame({"locus_id": ["P", "M", "N"], "chrom": "chr1", "center": 150_000, "strand": ["+", "-", "."]})
    predictor = load_predictor("borzoi", weights=str(tiny_borzoi), device="cpu", tracks=f"{RNA_PLUS},{RNA_MINUS}")
    features = {loci["locus_id"][p.locus_index]: p.features[0, 0]
                for p in predict_loci(predictor, Genome(demo_dir() / "genome.fa"), loci, progress=False)}
    np.testing.assert_allclose(features["M"], features["P"][::-1], rtol=1e-6)   # same window, batch rounding
    np.testing.assert_allclose(features["N"], features["P"], rtol=1e-6)
    assert abs(features["P"][0] - features["P"][1]) > 1e-3


class _ColumnPredictor(SequencePredictor):
    """Each track's value is its index plus 1000 x the window's first base: shows which track a row read."""

    name = "columns"

    def __init__(self, tracks: str, mates: list[int] | None) -> None:
        super().__init__("none", batch_size=2, bins=1, tracks=tracks)
        self.setup(8, 1, 8, [f"t{i}" for i in range(6)], mates)

    def forward(self, windows: np.ndarray) -> np.ndarray:
        return (self.track_index[None, None, :] + 1000.0 * windows[:, :1, None]).astype(np.float32)


def test_the_base_class_swaps_stranded_tracks_for_minus_strand_windows():
    mates = [1, 0, 2, 4, 3, 5]           # t0/t1 and t3/t4 are pairs; t2, t5 unstranded
    predictor = _ColumnPredictor("t0,t2,t4", mates)
    assert predictor.track_index.tolist() == [0, 2, 4, 1, 3] and predictor.stranded
    windows = np.zeros((3, 8), np.uint8)
    windows[:, 0] = [0, 1, 2]
    got = predictor.predict(windows, np.array(["+", "-", "."]))[:, 0]
    np.testing.assert_array_equal(got, [[0, 2, 4], [1001, 1002, 1003], [2000, 2002, 2004]])
    unstranded = _ColumnPredictor("t0,t2,t4", None)
    assert unstranded.track_index.tolist() == [0, 2, 4] and not unstranded.stranded
    np.testing.assert_array_equal(unstranded.predict(windows, ["-"] * 3)[:, 0], [[0, 2, 4], [1000, 1002, 1004],
                                                                                [2000, 2002, 2004]])
    with pytest.raises(EnpactError, match="3 strand mates for 6 tracks"):
        _ColumnPredictor("t0", [0, 1, 2])


class _BaseCountPredictor(SequencePredictor):
    """A stranded pair of tracks: per 4 bp bin, the A count ('+', what the plus strand reads) and the T count ('-',
    the same on the minus strand); bins kept (`aggregate` none)."""

    name = "base_counts"

    def __init__(self) -> None:
        super().__init__("none", batch_size=3, bins=4, tracks="plus", aggregate="none")
        self.setup(64, 4, 16, ["plus", "minus"], [1, 0])

    def forward(self, windows: np.ndarray) -> np.ndarray:
        bins = windows.reshape(len(windows), -1, self.bin_bp)[:, self.bin_start:self.bin_start + self.bins]
        counts = np.stack([(bins == 0).sum(axis=2), (bins == 3).sum(axis=2)], axis=2)   # A, T
        return counts[:, :, self.track_index].astype(np.float32)


def reverse_complement(windows: np.ndarray) -> np.ndarray:
    """Reverse complement of uint8 windows (A,C,G,T,N = 0..4)."""
    return np.array([3, 2, 1, 0, 4], np.uint8)[windows[..., ::-1]]


def test_minus_strand_loci_keep_their_bins_upstream_first():
    """A planted signal upstream of the locus (an A block in the first kept bin): a minus-strand locus in the mirrored
    context (the reverse complement window) gets the same bin vector as the plus-strand one, upstream bin first."""
    predictor = _BaseCountPredictor()
    rng = np.random.default_rng(5)
    plus = rng.integers(1, 3, (3, 64)).astype(np.uint8)    # C/G background
    plus[:, 24:28] = 0                                     # the A block: first kept bin (bins 6-9 of 16)
    plus[1, 36] = 3                                        # a T downstream, read by the mate only
    got = predictor.predict(np.concatenate([plus, reverse_complement(plus)]), ["+"] * 3 + ["-"] * 3)
    np.testing.assert_array_equal(got[:3, :, 0], [[4, 0, 0, 0]] * 3)
    np.testing.assert_array_equal(got[3:], got[:3])
    unstranded = predictor.predict(plus, ["."] * 3)       # no strand: genomic order, the track as named
    np.testing.assert_array_equal(unstranded, got[:3])


def test_reference_and_personalized_windows_orient_bins_the_same(tmp_path):
    """Both go through predict_loci: a plus-strand locus and a minus-strand locus whose context and variant are its
    mirror image get the same features, for the reference window and for the haplotype carrying the variant."""
    from conftest import write_fasta, write_vcf
    from enpact.genome import Genome, decode
    from enpact.predict import predict_loci
    from enpact.variants import VcfReader

    rng = np.random.default_rng(6)
    half = rng.integers(1, 3, 100).astype(np.uint8)
    half[42:46] = 0                                        # the A block upstream of the plus locus (centre 50)
    chrom = np.concatenate([half, reverse_complement(half)])   # position x mirrors 199 - x
    fasta = write_fasta(tmp_path / "genome.fa", {"chr1": decode(chrom)})
    records = ["\t".join(["chr1", str(pos + 1), ".", ref, alt, ".", "PASS", ".", "GT", "1|0"])
               for pos, ref, alt in [(43, "A", "T"), (156, "T", "A")]]   # one variant and its mirror image
    vcf = write_vcf(tmp_path / "calls.vcf", {"chr1": 200}, ["S1"], records)
    loci = pd.DataFrame({"locus_id": ["P", "M"], "chrom": "chr1", "center": [50, 150], "strand": ["+", "-"]})
    predictor = _BaseCountPredictor()
    for reader in (None, VcfReader(vcf)):
        items = {loci["locus_id"][p.locus_index]: p for p in predict_loci(predictor, Genome(fasta), loci, reader,
                                                                            progress=False)}
        features = {locus: item.features[item.windows.haplotype_window[0]] if reader else item.features[0]
                    for locus, item in items.items()}
        np.testing.assert_array_equal(features["M"], features["P"])
        assert features["P"][..., 0, 0].tolist() == ([3, 4] if reader else 4)

# -------------------------------------------------------------------------------------------------------------
# window, weights and errors


def test_window_and_weights_come_from_the_predictor(tiny_borzoi, monkeypatch):
    assert predictor_window_bp({"predictor": "borzoi"}) == 524_288
    assert predictor_window_bp({"predictor": "borzoi", "weights": str(tiny_borzoi)}) == 4096
    assert predictor_window_bp({"predictor": "borzoi", "weights": str(tiny_borzoi), "window_bp": 8192}) == 8192
    assert predictor_window_bp({"predictor": "enformer"}) == 196_608
    choose = borzoi_module.BorzoiPredictor.choose_weights
    assert choose(None, "cpu", "bf16") == "johahi/borzoi-replicate-0"
    monkeypatch.setattr(borzoi_module, "flash_attention_available", lambda device: True)
    assert choose(None, "cuda", "bf16") == choose(None, "cuda", "fp16") == "johahi/flashzoi-replicate-0"
    assert choose(None, "cuda", "fp32") == "johahi/borzoi-replicate-0"     # Flashzoi's kernel is half width only
    assert choose("my/weights", "cuda", "bf16") == "my/weights"


def test_coverage_scale_undoes_the_squashing_as_borzoi_pytorch_does(tiny_borzoi, targets):
    """scale=coverage: each bin of each track unsquashed with its targets.txt parameters (borzoi-pytorch's
    `undo_squashed_scale`, the published model's transform), then averaged; the default stays the squashed scale."""
    from borzoi_pytorch.pytorch_borzoi_utils import undo_squashed_scale

    def package_unsquash(values: np.ndarray, track: int) -> np.ndarray:
        row = targets.iloc[track]
        power = 0.75 if "sqrt" in row["sum_stat"] else 1.0
        return undo_squashed_scale(torch.from_numpy(values.astype(np.float64)), clip_soft=float(row["clip_soft"]),
                                   track_transform=power, track_scale=float(row["scale"])).numpy()

    rna = int(np.flatnonzero(targets["identifier"] == RNA_PLUS)[0])
    cage = int(np.flatnonzero(targets["description"].str.startswith("CAGE:"))[0])
    dnase = int(np.flatnonzero(targets["description"].str.startswith("DNASE:"))[0])
    tracks = [rna, cage, dnase]
    assert [targets["sum_stat"].iloc[t] for t in tracks] == ["sum_sqrt", "sum", "mean"]   # the three transforms
    # planted values on both sides of every track's soft clip, through the transform itself
    planted = np.array([[0.5, 3.0, 20.0, 120.0, 500.0]] * 3).T                           # (values, tracks)
    scale, clip_soft, power = (a[tracks] for a in borzoi_module.read_squashing(
        Path(borzoi_module.targets_file("unused", "human")), len(targets)))
    got = borzoi_module.unsquash(torch.from_numpy(planted), *(torch.from_numpy(a) for a in (scale, clip_soft, power)))
    want = np.stack([package_unsquash(planted[:, i], t) for i, t in enumerate(tracks)], axis=1)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert (want[3:, 2] > 120.0 * 2).all() and want[-1, 0] > 1e3                   # clipped values really expanded
    # end to end: per bin, then the mean of the central bins
    windows = random_windows(2, 4096, 4)
    reference = package_forward(tiny_borzoi, windows)[:, :, 62:66]                    # (2, 7611, 4)
    want = np.stack([package_unsquash(reference[:, t], t).mean(axis=1) for t in tracks], axis=1)
    spec = ",".join(str(t) for t in tracks)
    coverage = load_predictor("borzoi", weights=str(tiny_borzoi), device="cpu", tracks=spec, scale="coverage")
    np.testing.assert_allclose(coverage.predict(windows)[:, 0], want, rtol=1e-4)
    assert coverage.describe()["options"] == {"head": "human", "scale": "coverage"}
    squashed = load_predictor("borzoi", weights=str(tiny_borzoi), device="cpu", tracks=spec)
    np.testing.assert_allclose(squashed.predict(windows)[:, 0], reference[:, tracks].mean(axis=2), rtol=1e-5)
    with pytest.raises(EnpactError, match="scale must be squashed or coverage"):
        load_predictor("borzoi", weights=str(tiny_borzoi), device="cpu", scale="counts")


def test_bins_outside_those_borzoi_predicts_are_refused(tiny_borzoi, tmp_path):
    """A checkpoint whose crop keeps the central 64 of its 128 bins (as the published one keeps 6,144 of 16,384):
    bins up to 64 are taken, more are a one-line error naming the parameter."""
    cropped = tmp_path / "cropped"
    cropped.mkdir()
    config = json.loads((tiny_borzoi / "config.json").read_text())
    (cropped / "config.json").write_text(json.dumps({**config, "bins_to_return": 64}))
    (cropped / "model.safetensors").symlink_to(tiny_borzoi / "model.safetensors")
    (cropped / "enpact_predictor.json").write_text((tiny_borzoi / "enpact_predictor.json").read_text())
    assert load_predictor("borzoi", weights=str(cropped), device="cpu", bins=64, tracks="0").bins == 64
    with pytest.raises(EnpactError, match=r"^borzoi: bins 65 reach outside the central 64 bins \(2,048 bp\) that "
                                          r"Borzoi predicts; set bins \(--bins\) to at most 64$"):
        load_predictor("borzoi", weights=str(cropped), device="cpu", bins=65, tracks="0")
    assert load_predictor("borzoi", weights=str(tiny_borzoi), device="cpu", bins=128, tracks="0").bins == 128


def test_borzoi_errors_are_one_line(tiny_borzoi, tmp_path):
    with pytest.raises(EnpactError, match="no config.json"):
        load_predictor("borzoi", weights=str(tmp_path), device="cpu")
    with pytest.raises(EnpactError, match="cannot load Borzoi weights '/no/such/dir'.*huggingface-cli download"):
        load_predictor("borzoi", weights="/no/such/dir", device="cpu")
    with pytest.raises(EnpactError, match="must be a multiple of 128 bp"):
        load_predictor("borzoi", weights=str(tiny_borzoi), device="cpu", window_bp=4000)
    with pytest.raises(EnpactError, match="no mouse head"):
        load_predictor("borzoi", weights=str(tiny_borzoi), device="cpu", head="mouse")
    flashed = tmp_path / "flashzoi"
    flashed.mkdir()
    config = json.loads((tiny_borzoi / "config.json").read_text())
    (flashed / "config.json").write_text(json.dumps({**config, "flashed": True}))
    (flashed / "model.safetensors").symlink_to(tiny_borzoi / "model.safetensors")
    with pytest.raises(EnpactError, match="Flashzoi weights"):
        load_predictor("borzoi", weights=str(flashed), device="cpu")


# -------------------------------------------------------------------------------------------------------------
# end to end


def test_enpact_run_with_borzoi(tiny_borzoi, tmp_path):
    """`enpact run --demo borzoi` (expression planted on the tiny Borzoi's features, borzoi/planted.json), with
    personalization limited to the loci near the GWAS signal to keep the test short: the model finds the planted
    tracks, windows are deduplicated, and linearization (window: Borzoi's input length) fills a database."""
    from enpact.params import demo_params

    params = {**demo_params("borzoi"), "weights": str(tiny_borzoi), "outdir": str(tmp_path / "results"),
              "lin_gwas_pvalue": 5e-8}
    (tmp_path / "params.json").write_text(json.dumps(params))
    assert main(["run", "--params", str(tmp_path / "params.json"), "--no-progress"]) == 0
    out = Path(params["outdir"])
    metrics = json.loads((out / "model" / "metrics.json").read_text())
    assert metrics["model"]["test"]["pearson_r"] > 0.8, metrics["model"]
    spec = json.loads((out / "model" / "model.json").read_text())["feature_spec"]
    assert (spec["predictor"], spec["window_bp"], spec["bin_bp"], len(spec["tracks"])) == ("borzoi", 4096, 32, 7611)
    personalized = json.loads((out / "report" / "summary.json").read_text())["personalized"]
    assert 0 < personalized["distinct_windows"] < personalized["haplotype_windows"]
    with sqlite3.connect(next((out / "linearized").glob("*.db"))) as con:
        weights = pd.read_sql("select gene, varID from weights", con)
    assert weights["gene"].nunique() > 0
    # lin_window_bp unset: the predictor's input length (4,096 bp around the TSS), not Enformer's 196,608
    centers = pd.read_csv(out / "loci" / "loci.tsv", sep="\t", index_col="locus_id")["center"]
    offset = weights["varID"].str.split("_").str[1].astype(int) - 1 - centers.loc[weights["gene"]].to_numpy()
    assert offset.between(-2048, 2047).all() and (offset.abs() > 512).any()
    assert next((out / "twas").glob("*.csv")).read_text().startswith("gene,gene_name,zscore")
