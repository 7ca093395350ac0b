"""Personalized accuracy: how well personalized EnPACT predictions follow the observed values across individuals.

Per gene, Pearson r across the individuals shared by the personalized stores and the training matrix, tested
one-sided against permutations of individuals (`enpact accuracy`, a step of both engines; the report renders the
table it writes).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from enpact.io import atomic_path

log = logging.getLogger(__name__)

N_PERMUTATIONS = 200
MIN_SHARED_SAMPLES = 5
ACCURACY_COLUMNS = ("gene", "r", "p_positive", "p_negative", "null_sd", "null_r", "predicted_sd", "observed_sd")


def personalized_values(stores: Sequence[Path], context: str | None = None
                        ) -> tuple[pd.DataFrame, int, int, bool]:
    """Individual values (loci x samples) of merged personalized stores (one context's, for stores of several),
    windows predicted / needed, and whether every store was assembled from a plan."""
    from enpact.store import read_personalized_store, single_context

    frames, predicted, needed = [], 0, 0
    planned = True
    for path in stores:
        store = single_context(read_personalized_store(path, False, context), str(path))
        planned = planned and bool(store.meta.get("planned"))
        frames.append(pd.DataFrame(store.individual_values(), index=store.locus_ids, columns=store.samples))
        if store.n_unique_windows is not None:
            predicted += int(store.n_unique_windows.sum())
        needed += len(store.locus_ids) * (2 * len(store.samples) + 1)
    return (pd.concat(frames) if frames else pd.DataFrame()), predicted, needed, planned


def one_sided_empirical_p(r: np.ndarray, null: np.ndarray) -> np.ndarray:
    """(1 + #(null_r >= r)) / (n_perm + 1) per row of `null` (genes x permutations); NaN where r is NaN."""
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        p = (1 + (null >= r[:, None]).sum(axis=1)) / (null.shape[1] + 1)
    return np.where(np.isfinite(r), p, np.nan)


def _standardised_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows centred and scaled to unit norm (NaN treated as the row mean), and each row's standard deviation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows without any value: mean of an empty slice
        centred = np.nan_to_num(values - np.nanmean(values, axis=1, keepdims=True)) if values.size else values
    norm = np.sqrt((centred * centred).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(norm[:, None] > 0, centred / norm[:, None], np.nan)
    return scaled, norm / np.sqrt(max(values.shape[1], 1))


def personalized_accuracy(predicted: pd.DataFrame, observed: pd.DataFrame, seed: int = 0,
                          n_permutations: int = N_PERMUTATIONS) -> pd.DataFrame:
    """Per-gene Pearson r across shared individuals, tested one-sided for a positive correlation (p_positive) and,
    separately, for a negative one (p_negative), each against the same null of permuted individuals."""
    samples = [s for s in predicted.columns if s in observed.columns]
    genes = [g for g in predicted.index if g in observed.index]
    if len(samples) < MIN_SHARED_SAMPLES or not genes:
        return pd.DataFrame(columns=list(ACCURACY_COLUMNS))
    with np.errstate(invalid="ignore"):
        pred, pred_sd = _standardised_rows(predicted.loc[genes, samples].to_numpy(np.float64))
        obs, obs_sd = _standardised_rows(observed.loc[genes, samples].to_numpy(np.float64))
    r = (pred * obs).sum(axis=1)
    rng = np.random.default_rng(seed)
    null = np.stack([(pred[:, rng.permutation(len(samples))] * obs).sum(axis=1) for _ in range(n_permutations)],
                    axis=1)
    return pd.DataFrame({"gene": genes, "r": r, "p_positive": one_sided_empirical_p(r, null),
                         "p_negative": one_sided_empirical_p(-r, -null), "null_sd": null.std(axis=1),
                         "null_r": null[:, 0], "predicted_sd": pred_sd, "observed_sd": obs_sd})


def write_accuracy(stores: Sequence[Path], expression: Path, table_path: Path, summary_path: Path, seed: int = 0,
                   n_permutations: int = N_PERMUTATIONS, context: str | None = None) -> dict:
    """Write the per-gene table (header only when nothing can be tested) and a JSON summary of what was compared."""
    from enpact.expression import read_expression

    values, predicted, needed, planned = personalized_values(stores, context)
    observed = read_expression(expression)
    accuracy = (personalized_accuracy(values, observed, seed=seed, n_permutations=n_permutations)
                if not values.empty else pd.DataFrame(columns=list(ACCURACY_COLUMNS)))
    summary = {
        # predictor passes; stores assembled from a plan (both engines) predicted each distinct window of a locus
        # over every individual exactly once (enpact merge --plan checks it), so the two agree
        "loci": int(values.shape[0]), "samples": int(values.shape[1]), "windows_predicted": predicted,
        "distinct_windows": predicted if planned and stores else None,
        "haplotype_windows": needed, "observed_samples": int(observed.shape[1]),
        "observed_features": int(observed.shape[0]),
        "shared_individuals": int(values.columns.isin(observed.columns).sum()) if not values.empty else 0,
        "shared_loci": int(values.index.isin(observed.index).sum()) if not values.empty else 0,
        "min_shared_individuals": MIN_SHARED_SAMPLES, "permutations": n_permutations, "seed": seed,
        "genes_tested": int(len(accuracy)),
    }
    with atomic_path(table_path) as tmp:
        accuracy.to_csv(tmp, sep="\t", index=False)
    with atomic_path(summary_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    log.info("personalized accuracy: %d genes tested across %d shared individuals; wrote %s", len(accuracy),
             summary["shared_individuals"], table_path)
    return summary
