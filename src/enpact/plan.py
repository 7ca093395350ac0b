"""Distinct windows across every individual: decide which haplotype windows are identical before predicting.

Per loci chunk, `plan_windows` reads the genotypes of all individuals and gives every haplotype of every individual
the index of its distinct window (identity = the applied variants that change the window; row 0 = the reference
window) without building a sequence. The distinct windows are then split into parts sized for one predictor task
(`windows_per_part`); `predict_part` builds and predicts only its part's windows and applies every EnPACT model; and
`assemble` maps the parts' values back to (locus, individual, haplotype). The predictor runs exactly once per
distinct window of a locus, whatever the chunk sizes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from enpact.errors import EnpactError
from enpact.genome import Genome
from enpact.models.base import EnpactModel
from enpact.predict import iter_locus_windows, predict_loci
from enpact.predictors import Predictor
from enpact.store import (FeatureStore, PersonalizedStore, create_hdf5, open_hdf5, read_strings, write_array,
                          write_strings)
from enpact.variants import LinearizableVariants, VcfReader

log = logging.getLogger(__name__)


@dataclass
class WindowPlan:
    """The distinct windows of a loci chunk over every individual, and the parts the predictor tasks take."""

    locus_ids: list[str]
    samples: list[str]
    n_distinct: np.ndarray  # (n_loci,) int32, reference included
    haplotype_window: np.ndarray  # (n_loci, n_samples, 2) int32 distinct-window index per haplotype
    parts: np.ndarray  # (n_ranges, 4) int64: part, locus, first window, end window
    meta: dict = field(default_factory=dict)

    @property
    def n_parts(self) -> int:
        """Number of predictor tasks."""
        return int(self.parts[:, 0].max()) + 1 if len(self.parts) else 0


def split_parts(n_distinct: np.ndarray, windows_per_part: int) -> np.ndarray:
    """Ranges (part, locus, start, stop) covering every locus's windows in order, at most `windows_per_part` per
    part (a locus may span parts)."""
    if windows_per_part < 1:
        raise EnpactError("--windows-per-part must be at least 1")
    ranges, part, room = [], 0, windows_per_part
    for locus, n in enumerate(n_distinct.tolist()):
        start = 0
        while start < n:
            take = min(room, n - start)
            ranges.append((part, locus, start, start + take))
            start += take
            room -= take
            if room == 0:
                part, room = part + 1, windows_per_part
    return np.array(ranges, dtype=np.int64).reshape(-1, 4)


def plan_windows(genome: Genome, loci: pd.DataFrame, vcf: VcfReader, window_bp: int, windows_per_part: int,
                 selection: LinearizableVariants | None = None) -> WindowPlan:
    """Identities of every haplotype window of the chunk (no sequence is built) and the predictor parts."""
    n_loci, n_samples = len(loci), len(vcf.samples)
    n_distinct = np.zeros(n_loci, dtype=np.int32)
    haplotype_window = np.zeros((n_loci, n_samples, 2), dtype=np.int32)
    nothing = np.zeros(0, dtype=np.int64)
    for index, windows in iter_locus_windows(genome, loci, window_bp, vcf, selection, lambda _index: nothing):
        n_distinct[index] = windows.n_distinct
        haplotype_window[index] = windows.haplotype_window
    vcf.counts.log(str(vcf.path))
    parts = split_parts(n_distinct, windows_per_part)
    total = n_loci * (2 * n_samples + 1)
    log.info("planned %d loci x %d individuals: %d distinct windows for %d haplotype and reference windows (%.1f%%), "
             "in %d parts", n_loci, n_samples, int(n_distinct.sum()), total, 100 * n_distinct.sum() / max(total, 1),
             int(parts[:, 0].max()) + 1 if len(parts) else 0)
    return WindowPlan(loci["locus_id"].tolist(), list(vcf.samples), n_distinct, haplotype_window, parts,
                      {"window_bp": window_bp, "windows_per_part": windows_per_part})


def write_plan(path: str | Path, plan: WindowPlan) -> None:
    """Write a plan atomically (HDF5, byte-stable)."""
    with create_hdf5(path, "plan", plan.meta) as handle:
        write_strings(handle, "locus_id", plan.locus_ids)
        write_strings(handle, "sample", plan.samples)
        write_array(handle, "n_distinct", plan.n_distinct.astype(np.int32))
        write_array(handle, "haplotype_window", plan.haplotype_window.astype(np.int32))
        write_array(handle, "parts", plan.parts.astype(np.int64))


def read_plan(path: str | Path) -> WindowPlan:
    """Read a plan written by `enpact plan`."""
    with open_hdf5(path, "plan") as handle:
        return WindowPlan(read_strings(handle, "locus_id"), read_strings(handle, "sample"), handle["n_distinct"][()],
                          handle["haplotype_window"][()], handle["parts"][()].reshape(-1, 4),
                          json.loads(handle.attrs["meta"]))


@dataclass
class PartValues:
    """The EnPACT values (per context) of one part's distinct windows, and their features when kept."""

    locus: np.ndarray  # (n,) int32 locus index in the plan
    window: np.ndarray  # (n,) int32 distinct-window index of that locus
    values: np.ndarray  # (n_contexts, n) float32
    features: np.ndarray | None = None  # (n, n_bins, n_tracks) float32
    meta: dict = field(default_factory=dict)


def predict_part(genome: Genome, loci: pd.DataFrame, vcf: VcfReader, plan: WindowPlan, part: int,
                 models: list[EnpactModel], uses: np.ndarray, predictor: Predictor,
                 selection: LinearizableVariants | None = None, save_features: bool = False,
                 progress: bool = True) -> PartValues:
    """Build and predict the windows of one part (every model applied to the loci its context uses)."""
    if list(vcf.samples) != plan.samples or loci["locus_id"].tolist() != plan.locus_ids:
        raise EnpactError("the plan was made for other loci or individuals; plan again with this chunk")
    if not 0 <= part < plan.n_parts:
        raise EnpactError(f"part {part} is not in the plan (it has {plan.n_parts})")
    ranges = plan.parts[plan.parts[:, 0] == part]
    rows = {int(locus): np.arange(start, stop) for _p, locus, start, stop in ranges.tolist()}
    members = loci.iloc[sorted(rows)]
    positions = {locus_id: i for i, locus_id in enumerate(plan.locus_ids)}
    locus_of = [positions[l] for l in members["locus_id"]]
    loci_part, window_part, value_part, feature_part = [], [], [], []
    for item in predict_loci(predictor, genome, members, vcf, progress=progress, selection=selection,
                             rows_of=lambda i: rows[locus_of[i]]):
        locus = locus_of[item.locus_index]
        expected = plan.haplotype_window[locus]
        if item.windows.n_distinct != plan.n_distinct[locus] or not np.array_equal(item.windows.haplotype_window,
                                                                                     expected):
            raise EnpactError(f"locus {plan.locus_ids[locus]}: the windows differ from the plan's; the VCF or the "
                              "variant options changed since `enpact plan`")
        values = np.full((len(models), len(item.features)), np.nan, dtype=np.float32)
        for c, model in enumerate(models):
            if uses[c, locus]:
                values[c] = model.predict(item.features).astype(np.float32)
        loci_part.append(np.full(len(item.features), locus, np.int32))
        window_part.append(rows[locus].astype(np.int32))
        value_part.append(values)
        if save_features:
            feature_part.append(item.features.astype(np.float32))
    vcf.counts.log(str(vcf.path))
    n = int(sum(len(w) for w in window_part))
    log.info("part %d: predicted %d distinct windows of %d loci", part, n, len(rows))
    return PartValues(np.concatenate(loci_part) if loci_part else np.zeros(0, np.int32),
                      np.concatenate(window_part) if window_part else np.zeros(0, np.int32),
                      np.concatenate(value_part, axis=1) if value_part else np.zeros((len(models), 0), np.float32),
                      np.concatenate(feature_part) if feature_part else None, {"part": part})


def write_part(path: str | Path, part: PartValues) -> None:
    """Write a part's values atomically."""
    with create_hdf5(path, "windows", part.meta) as handle:
        write_array(handle, "locus", part.locus)
        write_array(handle, "window", part.window)
        write_array(handle, "values", np.ascontiguousarray(part.values, dtype=np.float32))
        if part.features is not None:
            write_array(handle, "features", np.ascontiguousarray(part.features, dtype=np.float32))


def read_part(path: str | Path) -> PartValues:
    """Read a part written by `enpact personalize --plan`."""
    with open_hdf5(path, "windows") as handle:
        return PartValues(handle["locus"][()], handle["window"][()], handle["values"][()],
                          handle["features"][()] if "features" in handle else None, json.loads(handle.attrs["meta"]))


def assemble(plan: WindowPlan, parts: list[tuple[Path, PartValues]], meta: dict, contexts: list[str] | None,
             uses: np.ndarray | None) -> PersonalizedStore:
    """The personalized store of the chunk: each haplotype gets its distinct window's value; every window of the
    plan must come from exactly one part (in any order)."""
    n_contexts = uses.shape[0] if uses is not None else 1
    offsets = np.concatenate([[0], np.cumsum(plan.n_distinct.astype(np.int64))])
    values = np.full((n_contexts, int(offsets[-1])), np.nan, dtype=np.float32)
    seen = np.zeros(int(offsets[-1]), dtype=np.int32)
    with_features = all(p.features is not None for _, p in parts) and parts
    features = None
    for path, part in parts:
        if part.values.shape[0] != n_contexts:
            raise EnpactError(f"{path}: holds values of {part.values.shape[0]} models, the merge expects {n_contexts}")
        index = offsets[part.locus] + part.window
        if len(index) and (index.max() >= len(seen) or (part.window >= plan.n_distinct[part.locus]).any()):
            raise EnpactError(f"{path}: windows beyond the plan's; was it made with another plan?")
        values[:, index] = part.values
        seen[index] += 1
        if with_features:
            if features is None:
                features = np.zeros((len(seen),) + part.features.shape[1:], dtype=np.float32)
            features[index] = part.features
    if (seen > 1).any():
        raise EnpactError(f"window {int(np.flatnonzero(seen > 1)[0])} of the plan is in more than one part")
    if (seen == 0).any():
        missing = int(np.flatnonzero(seen == 0)[0])
        locus = int(np.searchsorted(offsets, missing, side="right") - 1)
        raise EnpactError(f"locus {plan.locus_ids[locus]}: a distinct window is in no part; a part is missing")
    rows = offsets[:-1, None, None] + plan.haplotype_window   # (n_loci, n_samples, 2) global window rows
    prediction = values[:, rows]
    reference = values[:, offsets[:-1]]
    feature_store = None
    if with_features:
        feature_store = FeatureStore(plan.locus_ids, plan.samples, features,
                                     np.repeat(np.arange(len(plan.locus_ids)), plan.n_distinct).astype(np.int32),
                                     offsets[:-1].astype(np.int32), rows.astype(np.int32), meta.get("predictor", {}))
    n_unique = plan.n_distinct.astype(np.int32)
    meta = {**meta, "planned": True}   # windows predicted = the distinct windows over every individual
    if contexts is None:
        return PersonalizedStore(plan.locus_ids, plan.samples, prediction[0], reference[0], meta, n_unique,
                                 feature_store)
    return PersonalizedStore(plan.locus_ids, plan.samples, prediction, reference, meta, n_unique, feature_store,
                             list(contexts), uses)
