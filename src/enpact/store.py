"""Prediction stores (HDF5): predictor features of unique windows, and personalized EnPACT predictions.

Feature store (`enpact predict`): one row per distinct window, and maps from (locus) and
(locus, sample, haplotype) to rows. Personalized store (`enpact personalize`): the EnPACT prediction per
locus x sample x haplotype and per reference window; features of unique windows only on request.
Files are written atomically and without timestamps, so identical content gives identical bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from enpact import __version__
from enpact.errors import EnpactError
from enpact.io import atomic_path

FORMAT_VERSION = 1
_STR = h5py.string_dtype()


@dataclass
class FeatureStore:
    """Features of unique windows and the maps from loci and haplotypes to rows."""

    locus_ids: list[str]
    samples: list[str]
    features: np.ndarray  # (n_rows, n_bins, n_tracks) float32
    row_locus: np.ndarray  # (n_rows,) int32
    reference_row: np.ndarray  # (n_loci,) int32
    haplotype_row: np.ndarray  # (n_loci, n_samples, 2) int32
    meta: dict = field(default_factory=dict)

    def reference_features(self) -> np.ndarray:
        """Features of each locus's reference window, (n_loci, n_bins, n_tracks)."""
        return self.features[self.reference_row]


@dataclass
class PersonalizedStore:
    """EnPACT predictions per locus x sample x haplotype, plus the reference prediction per locus.

    A store of several contexts (one EnPACT model each, one predictor pass) has a leading context axis:
    prediction (n_contexts, n_loci, n_samples, 2), reference (n_contexts, n_loci), `context_loci` says which loci
    each context's model was applied to (NaN elsewhere) and meta["models"] holds each context's model.
    `for_context` gives one context's single-context view.
    """

    locus_ids: list[str]
    samples: list[str]
    prediction: np.ndarray  # (n_loci, n_samples, 2) float32; with contexts (n_contexts, n_loci, n_samples, 2)
    reference: np.ndarray  # (n_loci,) float32; with contexts (n_contexts, n_loci)
    meta: dict = field(default_factory=dict)
    n_unique_windows: np.ndarray | None = None  # (n_loci,) int32 windows predicted per locus (summed over chunks)
    features: FeatureStore | None = None
    contexts: list[str] | None = None
    context_loci: np.ndarray | None = None  # (n_contexts, n_loci) bool

    def individual_values(self) -> np.ndarray:
        """An individual's value is the mean of its two haplotypes: (n_loci, n_samples) float64."""
        if self.contexts is not None:
            raise EnpactError(f"this store holds contexts {', '.join(self.contexts)}; select one first")
        return self.prediction.astype(np.float64).mean(axis=2)

    def for_context(self, context: str, source: str = "personalized store") -> "PersonalizedStore":
        """One context's predictions, over the loci its model was applied to (features of those loci kept)."""
        if self.contexts is None:
            raise EnpactError(f"{source}: holds one unnamed context, not '{context}'; leave out --context")
        if context not in self.contexts:
            raise EnpactError(f"{source}: no context '{context}'; it holds {', '.join(self.contexts)}")
        c = self.contexts.index(context)
        used = np.flatnonzero(self.context_loci[c])
        meta = {k: v for k, v in self.meta.items() if k != "models"}
        meta.update(model=self.meta["models"][context], context=context)
        return PersonalizedStore(
            [self.locus_ids[i] for i in used], self.samples, self.prediction[c][used], self.reference[c][used], meta,
            None if self.n_unique_windows is None else self.n_unique_windows[used],
            None if self.features is None else _feature_subset(self.features, used))


def _feature_subset(store: FeatureStore, loci: np.ndarray) -> FeatureStore:
    """The rows of a feature store that belong to the given loci (indices), renumbered."""
    keep = np.isin(store.row_locus, loci)
    new_row = np.cumsum(keep) - 1
    new_locus = np.full(len(store.locus_ids), -1, np.int64)
    new_locus[loci] = np.arange(len(loci))
    return FeatureStore([store.locus_ids[i] for i in loci], store.samples, store.features[keep],
                        new_locus[store.row_locus[keep]].astype(np.int32),
                        new_row[store.reference_row[loci]].astype(np.int32),
                        new_row[store.haplotype_row[loci]].astype(np.int32), store.meta)


def write_strings(group: h5py.Group, name: str, values: list[str]) -> None:
    """Store a list of strings as a variable-length UTF-8 dataset."""
    group.create_dataset(name, data=np.array(values, dtype=object), dtype=_STR, track_times=False)


def read_strings(group: h5py.Group, name: str) -> list[str]:
    """Read a string dataset back as a list of str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in group[name][()]]


def write_array(group: h5py.Group, name: str, data: np.ndarray) -> None:
    """Store an array, compressed when large, without modification times (byte-stable files)."""
    kwargs = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if data.size > 4096 else {}
    group.create_dataset(name, data=data, track_times=False, **kwargs)


def open_hdf5(path: str | Path, kind: str) -> h5py.File:
    """Open a store for reading and check its kind."""
    path = Path(path)
    if not path.exists():
        raise EnpactError(f"prediction store not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise EnpactError(f"{path}: not a readable HDF5 prediction store ({err})")
    found = handle.attrs.get("kind", "")
    if found != kind:
        handle.close()
        raise EnpactError(f"{path}: expected a {kind} store, found '{found or 'unknown'}'")
    return handle


def _write_feature_groups(handle: h5py.File, store: FeatureStore, prefix: str = "") -> None:
    """Write the feature datasets (shared by feature stores and personalized stores with features)."""
    group = handle.require_group(prefix) if prefix else handle
    write_array(group, "features", np.ascontiguousarray(store.features, dtype=np.float32))
    write_array(group, "row_locus", store.row_locus.astype(np.int32))
    write_array(group, "reference_row", store.reference_row.astype(np.int32))
    write_array(group, "haplotype_row", store.haplotype_row.astype(np.int32))


@contextmanager
def create_hdf5(path: str | Path, kind: str, meta: dict) -> Iterator[h5py.File]:
    """An HDF5 file of one kind (open_hdf5 checks it), written atomically and without timestamps."""
    with atomic_path(path, ".h5") as tmp:
        with h5py.File(tmp, "w", track_order=False) as handle:
            handle.attrs["kind"] = kind
            handle.attrs["format_version"] = FORMAT_VERSION
            handle.attrs["enpact_version"] = __version__
            handle.attrs["meta"] = json.dumps(meta, sort_keys=True)
            yield handle


def write_feature_store(path: str | Path, store: FeatureStore) -> None:
    """Write a feature store atomically."""
    with create_hdf5(path, "features", store.meta) as handle:
        write_strings(handle, "locus_id", store.locus_ids)
        write_strings(handle, "sample", store.samples)
        _write_feature_groups(handle, store)


def _read_feature_groups(group: h5py.Group, locus_ids: list[str], samples: list[str], meta: dict) -> FeatureStore:
    """Read the feature datasets written by `_write_feature_groups`."""
    return FeatureStore(
        locus_ids=locus_ids,
        samples=samples,
        features=group["features"][()],
        row_locus=group["row_locus"][()],
        reference_row=group["reference_row"][()],
        haplotype_row=group["haplotype_row"][()],
        meta=meta,
    )


def read_feature_store(path: str | Path) -> FeatureStore:
    """Read a feature store written by `enpact predict`."""
    with open_hdf5(path, "features") as handle:
        return _read_feature_groups(handle, read_strings(handle, "locus_id"), read_strings(handle, "sample"),
                                    json.loads(handle.attrs["meta"]))


def write_personalized_store(path: str | Path, store: PersonalizedStore) -> None:
    """Write a personalized prediction store atomically."""
    with create_hdf5(path, "personalized", store.meta) as handle:
        write_strings(handle, "locus_id", store.locus_ids)
        write_strings(handle, "sample", store.samples)
        write_array(handle, "prediction", np.ascontiguousarray(store.prediction, dtype=np.float32))
        write_array(handle, "reference", np.ascontiguousarray(store.reference, dtype=np.float32))
        if store.contexts is not None:
            write_strings(handle, "context", store.contexts)
            write_array(handle, "context_loci", store.context_loci.astype(np.uint8))
        if store.n_unique_windows is not None:
            write_array(handle, "n_unique_windows", store.n_unique_windows.astype(np.int32))
        if store.features is not None:
            _write_feature_groups(handle, store.features, "features")


def read_personalized_store(path: str | Path, with_features: bool = True,
                            context: str | None = None) -> PersonalizedStore:
    """Read a personalized prediction store written by `enpact personalize` or `enpact merge` (`context`: that
    context's view of a store of several; a store of several read without one keeps them all)."""
    store = _read_personalized_store(path, with_features)
    return store.for_context(context, str(path)) if context is not None else store


def _read_personalized_store(path: str | Path, with_features: bool) -> PersonalizedStore:
    """The store as written."""
    with open_hdf5(path, "personalized") as handle:
        locus_ids = read_strings(handle, "locus_id")
        samples = read_strings(handle, "sample")
        meta = json.loads(handle.attrs["meta"])
        features = None
        if with_features and "features" in handle:
            features = _read_feature_groups(handle["features"], locus_ids, samples, meta.get("predictor", {}))
        return PersonalizedStore(
            locus_ids=locus_ids,
            samples=samples,
            prediction=handle["prediction"][()],
            reference=handle["reference"][()],
            meta=meta,
            n_unique_windows=handle["n_unique_windows"][()] if "n_unique_windows" in handle else None,
            features=features,
            contexts=read_strings(handle, "context") if "context" in handle else None,
            context_loci=handle["context_loci"][()].astype(bool) if "context_loci" in handle else None,
        )


def single_context(store: PersonalizedStore, source: str) -> PersonalizedStore:
    """The store itself when it holds one unnamed context; a store of several needs a context named."""
    if store.contexts is not None:
        raise EnpactError(f"{source}: holds contexts {', '.join(store.contexts)}; name one with --context")
    return store


def _comparable_meta(meta: dict) -> str:
    """The part of a store's metadata that must agree between chunks (models, predictor, variants applied)."""
    return json.dumps({k: v for k, v in meta.items() if k in ("model", "models", "predictor", "variants")},
                      sort_keys=True)


def merge_personalized_stores(paths: list[str | Path], out: str | Path) -> PersonalizedStore:
    """Merge chunk stores (subsets of loci x subsets of samples) into one; the order of `paths` does not matter.

    Loci and samples of the result are sorted by id, and every (locus, sample) pair must be covered exactly once.
    """
    if not paths:
        raise EnpactError("merge: no input stores given")
    chunks = [(Path(p), read_personalized_store(p)) for p in paths]
    reference_meta = _comparable_meta(chunks[0][1].meta)
    for path, chunk in chunks[1:]:
        if _comparable_meta(chunk.meta) != reference_meta:
            raise EnpactError(f"{path}: made with a different model, predictor or variant selection than "
                              f"{chunks[0][0]}; cannot merge")
    chunks.sort(key=lambda item: (item[1].locus_ids[0], item[1].samples[0], item[1].locus_ids, item[1].samples))
    locus_ids = sorted({l for _, c in chunks for l in c.locus_ids})
    samples = sorted({s for _, c in chunks for s in c.samples})
    locus_pos = {l: i for i, l in enumerate(locus_ids)}
    sample_pos = {s: i for i, s in enumerate(samples)}
    contexts = chunks[0][1].contexts
    for path, chunk in chunks[1:]:
        if chunk.contexts != contexts:
            raise EnpactError(f"{path}: holds contexts {chunk.contexts} where {chunks[0][0]} holds {contexts}; "
                              "cannot merge")
    lead = (len(contexts),) if contexts is not None else ()
    c = np.arange(len(contexts))[:, None, None] if contexts is not None else ...
    prediction = np.full(lead + (len(locus_ids), len(samples), 2), np.nan, dtype=np.float32)
    covered = np.zeros((len(locus_ids), len(samples)), dtype=np.int32)
    reference = np.full(lead + (len(locus_ids),), np.nan, dtype=np.float32)
    context_loci = np.zeros(lead + (len(locus_ids),), dtype=bool) if contexts is not None else None
    n_unique = np.zeros(len(locus_ids), dtype=np.int32)
    with_features = all(c.features is not None for _, c in chunks)
    feature_blocks, row_locus, reference_row = [], [], np.full(len(locus_ids), -1, np.int32)
    haplotype_row = np.full((len(locus_ids), len(samples), 2), -1, dtype=np.int32)
    offset = 0
    for path, chunk in chunks:
        li = np.array([locus_pos[l] for l in chunk.locus_ids])
        si = np.array([sample_pos[s] for s in chunk.samples])
        if contexts is None:
            prediction[np.ix_(li, si)] = chunk.prediction
        else:
            prediction[c, li[:, None], si] = chunk.prediction
            context_loci[:, li] = chunk.context_loci
        covered[np.ix_(li, si)] += 1
        known = ~np.isnan(reference[..., li])
        # Chunks of other samples predict the same reference windows in other batches: equal up to float rounding.
        if np.any(known & ~np.isclose(reference[..., li], chunk.reference, rtol=1e-4, atol=1e-6)):
            raise EnpactError(f"{path}: reference predictions differ from another chunk for the same loci; "
                              "were the chunks made with different models or inputs?")
        # the first chunk (sorted order) wins
        reference[..., li] = np.where(known, reference[..., li], chunk.reference)
        if chunk.n_unique_windows is not None:
            n_unique[li] += chunk.n_unique_windows
        if with_features:
            f = chunk.features
            feature_blocks.append(f.features)
            row_locus.append(li[f.row_locus])
            unset = reference_row[li] < 0
            reference_row[li[unset]] = f.reference_row[unset] + offset
            haplotype_row[np.ix_(li, si)] = f.haplotype_row + offset
            offset += len(f.features)
    if np.any(covered > 1):
        l, s = np.argwhere(covered > 1)[0]
        raise EnpactError(f"merge: locus {locus_ids[l]}, sample {samples[s]} is in more than one chunk")
    if np.any(covered == 0):
        l, s = np.argwhere(covered == 0)[0]
        raise EnpactError(f"merge: locus {locus_ids[l]}, sample {samples[s]} is in no chunk; a chunk is missing")
    meta = dict(chunks[0][1].meta)
    meta["merged_from"] = len(chunks)
    features = None
    if with_features:
        features = FeatureStore(
            locus_ids=locus_ids,
            samples=samples,
            features=np.concatenate(feature_blocks),
            row_locus=np.concatenate(row_locus).astype(np.int32),
            reference_row=reference_row,
            haplotype_row=haplotype_row,
            meta=meta.get("predictor", {}),
        )
    merged = PersonalizedStore(locus_ids, samples, prediction, reference, meta, n_unique, features,
                               list(contexts) if contexts is not None else None, context_loci)
    write_personalized_store(out, merged)
    return merged


def merge_feature_stores(paths: list[Path]) -> FeatureStore:
    """Concatenate reference feature stores of disjoint loci chunks (sorted by first locus id)."""
    stores = sorted((read_feature_store(p) for p in paths), key=lambda s: s.locus_ids[0] if s.locus_ids else "")
    metas = {str(sorted(s.meta.get("predictor", {}).items())) for s in stores}
    if len(metas) > 1:
        raise EnpactError("merge-features: inputs were made with different predictor settings")
    if any(s.samples for s in stores):
        raise EnpactError("merge-features: only reference feature stores (no --vcf) can be merged")
    ids = [l for s in stores for l in s.locus_ids]
    if len(set(ids)) != len(ids):
        dup = pd.Index(ids)[pd.Index(ids).duplicated()][0]
        raise EnpactError(f"merge-features: locus {dup} is in more than one input")
    offsets = np.cumsum([0] + [len(s.features) for s in stores[:-1]])
    locus_offsets = np.cumsum([0] + [len(s.locus_ids) for s in stores[:-1]])
    return FeatureStore(
        locus_ids=ids, samples=[],
        features=np.concatenate([s.features for s in stores]),
        row_locus=np.concatenate([s.row_locus + lo for s, lo in zip(stores, locus_offsets)]).astype(np.int32),
        reference_row=np.concatenate([s.reference_row + o for s, o in zip(stores, offsets)]).astype(np.int32),
        haplotype_row=np.zeros((len(ids), 0, 2), np.int32),
        meta=stores[0].meta,
    )
