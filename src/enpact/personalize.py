"""Personalized EnPACT predictions: predictor on every distinct haplotype window, EnPACT model on the fly."""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import pandas as pd

from enpact.errors import EnpactError
from enpact.genome import Genome
from enpact.loci import context_mask
from enpact.models.base import EnpactModel, FeatureSpec
from enpact.predict import collect_feature_store, predict_loci
from enpact.predictors import Predictor
from enpact.store import FeatureStore, PersonalizedStore
from enpact.variants import LinearizableVariants, VcfReader

log = logging.getLogger(__name__)


def check_models(models: dict[str | None, EnpactModel], predictor: Predictor, weights_moved: bool,
                 allow_precision_mismatch: bool) -> None:
    """Every model reads features made like the predictor's (weights possibly moved: the same checkpoint)."""
    description = predictor.describe()
    for name, each in models.items():
        if weights_moved:
            description = {**description, "weights": each.feature_spec.weights}
        spec = FeatureSpec.from_dict(description, "predictor")
        each.feature_spec.check_compatible(spec, "personalize" if name is None else f"personalize (context {name})",
                                           allow_precision_mismatch)


def store_meta(models: dict[str | None, EnpactModel], contexts: list[str] | None, predictor: Predictor,
               selection: LinearizableVariants | None) -> dict:
    """A personalized store's metadata: the model (or each context's), the predictor, the variants applied."""
    model_meta = {name: {"type": each.model_type, "feature_spec": each.feature_spec.to_dict()}
                  for name, each in models.items()}
    meta = {"predictor": predictor.describe()}
    if contexts is None:
        meta["model"] = model_meta[None]
    else:
        meta["models"] = model_meta
    if selection is not None:   # stores of all variants keep their bytes
        meta["variants"] = {"linearizable": {"window_bp": selection.window_bp, **asdict(selection.filters)}}
    return meta


def personalize(
    genome: Genome,
    loci: pd.DataFrame,
    vcf: VcfReader,
    model: EnpactModel | dict[str, EnpactModel],
    predictor: Predictor,
    save_features: bool = False,
    progress: bool = True,
    weights_moved: bool = False,
    allow_precision_mismatch: bool = False,
    selection: LinearizableVariants | None = None,
) -> PersonalizedStore:
    """EnPACT prediction per locus x sample x haplotype (and per reference window) for one chunk.

    `model` is one EnPACT model, or one per named context: the predictor then runs once per distinct window and
    every context's model is applied to the loci the context uses (the loci table's `contexts` column).
    `weights_moved` accepts predictor weights at another location than recorded in the model (same checkpoint).
    `selection`: the haplotypes carry only the variants linearization will use (`variants linearizable`).
    """
    models = model if isinstance(model, dict) else {None: model}
    contexts = list(models) if isinstance(model, dict) else None
    check_models(models, predictor, weights_moved, allow_precision_mismatch)
    n_loci, n_samples = len(loci), len(vcf.samples)
    uses = context_mask(loci, contexts) if contexts is not None else np.ones((1, n_loci), dtype=bool)
    prediction = np.full((len(models), n_loci, n_samples, 2), np.nan, dtype=np.float32)
    reference = np.full((len(models), n_loci), np.nan, dtype=np.float32)
    n_unique = np.zeros(n_loci, dtype=np.int32)
    kept = []
    for item in predict_loci(predictor, genome, loci, vcf, progress=progress, selection=selection):
        for c, each in enumerate(models.values()):
            if uses[c, item.locus_index]:
                values = each.predict(item.features).astype(np.float32)
                prediction[c, item.locus_index] = values[item.windows.haplotype_window]
                reference[c, item.locus_index] = values[0]
        n_unique[item.locus_index] = item.windows.n_unique
        if save_features:
            kept.append(item)
    vcf.counts.log(str(vcf.path))
    features: FeatureStore | None = None
    meta = store_meta(models, contexts, predictor, selection)
    if save_features:
        features = collect_feature_store(kept, loci["locus_id"].tolist(), list(vcf.samples), meta["predictor"])
    total = n_loci * (2 * n_samples + 1)
    log.info("personalized %d loci x %d samples: %d windows predicted for %d haplotype windows (%.1f%%)%s",
             n_loci, n_samples, int(n_unique.sum()), total, 100 * n_unique.sum() / max(total, 1),
             f"; {len(models)} contexts' models applied" if contexts is not None else "")
    if contexts is None:
        return PersonalizedStore(loci["locus_id"].tolist(), list(vcf.samples), prediction[0], reference[0], meta,
                                 n_unique, features)
    return PersonalizedStore(loci["locus_id"].tolist(), list(vcf.samples), prediction, reference, meta, n_unique,
                             features, contexts, uses)


def rescore(store: PersonalizedStore, model: EnpactModel, source: str = "personalized store",
            allow_precision_mismatch: bool = False) -> PersonalizedStore:
    """Personalized predictions of another EnPACT model from the predictor features a store kept
    (`--save-features`), without the predictor: the same values `personalize` gives with that model."""
    if store.features is None:
        raise EnpactError(f"{source}: holds no predictor features; personalize with --save-features (parameter "
                          "save_features) to keep them, then rescore")
    spec = FeatureSpec.from_dict(store.features.meta, f"{source} (stored features)")
    model.feature_spec.check_compatible(spec, source, allow_precision_mismatch)
    features = store.features
    values = np.zeros(len(features.features), dtype=np.float32)
    order = np.argsort(features.row_locus, kind="stable")
    bounds = np.searchsorted(features.row_locus[order], np.arange(len(store.locus_ids) + 1))
    for start, stop in zip(bounds[:-1], bounds[1:]):   # locus by locus, as personalize applies the model
        if stop > start:
            rows = order[start:stop]
            values[rows] = model.predict(features.features[rows]).astype(np.float32)
    meta = {**store.meta, "model": {"type": model.model_type, "feature_spec": model.feature_spec.to_dict()}}
    log.info("rescored %d loci x %d samples from %d stored windows", len(store.locus_ids), len(store.samples),
             len(features.features))
    return PersonalizedStore(store.locus_ids, store.samples, values[features.haplotype_row],
                             values[features.reference_row], meta, store.n_unique_windows, features)


def individual_matrix(store: PersonalizedStore) -> pd.DataFrame:
    """Features x samples matrix of individual values (mean of the two haplotypes), PredictDB layout."""
    return pd.DataFrame(store.individual_values(), index=pd.Index(store.locus_ids, name="NAME"),
                        columns=store.samples)
