"""Steps of the reference pass and the EnPACT model: `enpact predict`, `merge-features`, `train`, `evaluate`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from enpact.options import option
from enpact.steps.common import (PredictorConfig, PredictorProvider, device_option,
                                 fasta_option, hyperparameter_pairs, input_file, optional_input, output_file,
                                 progress_option, render_pairs, samples_file_option, samples_option, seed_option,
                                 selected_samples, vcf_option)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictConfig:
    """`enpact predict`: predictor features of each locus's reference window (and of each distinct haplotype window
    with a VCF)."""

    fasta: Path = fasta_option()
    loci: Path = input_file("loci TSV (locus_id, chrom, center)")
    out: Path = output_file("output HDF5 feature store")
    predictor: PredictorConfig = PredictorConfig()
    vcf: Path | None = vcf_option(required=False)
    samples: tuple[str, ...] | None = samples_option()
    samples_file: Path | None = samples_file_option()
    allow_unphased: bool = option(False, help="use unphased genotypes in the order written")
    progress: bool = progress_option()


def predict(config: PredictConfig, predictors: PredictorProvider | None = None) -> None:
    """Predict and write the feature store (`predictors`: where to get the predictor, e.g. one already loaded)."""
    from enpact.genome import Genome
    from enpact.loci import read_loci
    from enpact.predict import collect_feature_store, dedup_summary, predict_loci
    from enpact.store import write_feature_store
    from enpact.variants import VcfReader

    genome = Genome(config.fasta)
    table = read_loci(config.loci)
    for chrom in table["chrom"].unique():
        genome.resolve(chrom)
    vcf = VcfReader(config.vcf, selected_samples(config), config.allow_unphased) if config.vcf else None
    predictor = (predictors or PredictorConfig.load)(config.predictor)
    predictions = predict_loci(predictor, genome, table, vcf, progress=config.progress)
    meta = {"predictor": predictor.describe(), "vcf": str(config.vcf) if config.vcf else None}
    store = collect_feature_store(predictions, table["locus_id"].tolist(), vcf.samples if vcf else [], meta)
    write_feature_store(config.out, store)
    if vcf is not None:
        vcf.counts.log(str(config.vcf))
    summary = dedup_summary(store)
    log.info("wrote %s: %d loci, %d windows predicted for %d haplotype windows (%.1f%%)", config.out,
             summary["loci"], summary["predicted_windows"], summary["haplotype_windows"],
             100 * summary["fraction_predicted"])


@dataclass(frozen=True)
class MergeFeaturesConfig:
    """`enpact merge-features`: the reference feature stores of loci chunks, concatenated."""

    inputs: tuple[Path, ...] = input_file("the chunks' feature stores")
    out: Path = output_file("merged feature store")


def merge_features(config: MergeFeaturesConfig) -> None:
    """Concatenate and write."""
    from enpact.store import merge_feature_stores, write_feature_store

    write_feature_store(config.out, merge_feature_stores(list(config.inputs)))


def _model_types() -> tuple[str, ...]:
    from enpact.models import available_model_types

    return tuple(sorted(available_model_types()))


@dataclass(frozen=True)
class TrainConfig:
    """`enpact train`: fit on the train chromosomes, evaluate on valid and test."""

    features: Path = input_file("reference feature store (enpact predict)")
    loci: Path = input_file("loci TSV with a split column")
    expression: Path = input_file("training matrix NAME IND1 ...", param="expression")
    outdir: Path = output_file("model directory to write")
    model_type: str = option("elastic_net", param="model_type", choices=_model_types(),
                             help="elastic_net (default), cnn, or a type a plug-in registers (docs/extending.md)")
    folds: int = option(5, param="model_folds", help="CV folds for the elastic-net penalty (default 5)")
    seed: int = seed_option()
    device: str = device_option("for the cnn model: auto, cpu or cuda")
    baseline_track: str | None = option(None, param="baseline_track",
                                        help="track used as single-track baseline (default: best on train)")
    hyperparameters: tuple[tuple[str, str], ...] = option(
        (), param="model_hyperparameters", parse=hyperparameter_pairs, render=render_pairs, metavar="NAME=VALUE,...",
        help="hyperparameters of the model type, e.g. channels=32,dropout=0.2 (checked against the type's; they "
        "override --folds and --seed; docs/extending.md lists each type's)")


def train(config: TrainConfig) -> None:
    """Train and evaluate."""
    from enpact.models.base import check_hyperparameters
    from enpact.training import train_and_evaluate, training_data  # matplotlib and scikit-learn: only here

    hyperparameters = check_hyperparameters(config.model_type, dict(config.hyperparameters))
    data = training_data(config.features, config.loci, config.expression)
    train_and_evaluate(*data, config.model_type, config.outdir, folds=config.folds, seed=config.seed,
                       device=config.device, baseline_track=config.baseline_track, hyperparameters=hyperparameters)


@dataclass(frozen=True)
class EvaluateConfig:
    """`enpact evaluate`: a saved model on other loci or targets."""

    model: Path = input_file("model directory")
    features: Path = input_file("reference feature store (enpact predict)")
    loci: Path = input_file("loci TSV with a split column")
    expression: Path = input_file("training matrix NAME IND1 ...")
    outdir: Path = output_file("folder to write the evaluation to")
    device: str = device_option()
    baseline_track: str | None = option(None, help="fit this track as baseline instead of the model's saved one")


def evaluate(config: EvaluateConfig) -> None:
    """Evaluate a saved model."""
    from enpact.training import evaluate_model, training_data

    features, y, splits, ids, spec = training_data(config.features, config.loci, config.expression)
    evaluate_model(config.model, features, y, splits, ids, config.outdir, feature_spec=spec,
                   baseline_track=config.baseline_track, device=config.device)
