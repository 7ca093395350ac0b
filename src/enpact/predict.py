"""Running a predictor over loci: reference and haplotype windows, deduplicated, batched across loci.

Windows are built on a background thread while the predictor runs, so a GPU is not left waiting for the CPU.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from enpact.genome import Genome, window_start
from enpact.haplotypes import LocusWindows, locus_windows
from enpact.logsummary import progress_bar
from enpact.predictors import Predictor
from enpact.store import FeatureStore
from enpact.variants import LinearizableVariants, VariantTable, VcfReader

log = logging.getLogger(__name__)


@dataclass
class LocusPrediction:
    """Features of the distinct windows of one locus and the haplotype -> window map."""

    locus_index: int
    windows: LocusWindows
    features: np.ndarray  # (n_unique, n_bins, n_tracks) float32


def _merged_intervals(starts: np.ndarray, ends: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """Merge overlapping [start, end) intervals; returns (start, end, member indexes) sorted by start."""
    order = np.argsort(starts, kind="stable")
    merged: list[tuple[int, int, list[int]]] = []
    for i in order.tolist():
        if merged and starts[i] <= merged[-1][1]:
            lo, hi, members = merged[-1]
            merged[-1] = (lo, max(hi, int(ends[i])), members + [i])
        else:
            merged.append((int(starts[i]), int(ends[i]), [i]))
    return [(lo, hi, np.array(m)) for lo, hi, m in merged]


def iter_locus_windows(
    genome: Genome,
    loci: pd.DataFrame,
    window_bp: int,
    vcf: VcfReader | None = None,
    selection: LinearizableVariants | None = None,
    rows_of: Callable[[int], np.ndarray | None] | None = None,
) -> Iterator[tuple[int, LocusWindows]]:
    """Distinct windows of every locus, in loci order within each merged VCF region (one VCF read per region);
    what is skipped is counted in the reader's counts (vcf.counts), the one counter the command logs. With a
    `selection`, a haplotype carries only the variants it keeps for the locus (e.g. those linearization uses). With
    `rows_of`, only the distinct windows it names for a locus (by its position in `loci`) are built."""
    counts = vcf.counts if vcf is not None else None
    for chrom, group in loci.groupby("chrom", sort=False):
        fasta_chrom = genome.resolve(chrom)
        starts = np.array([window_start(c, window_bp) for c in group["center"]]) - window_bp
        ends = starts + 3 * window_bp
        for lo, hi, members in _merged_intervals(starts, ends):
            if vcf is not None:
                table = vcf.read(chrom, lo, hi, genome)
            else:
                table = VariantTable(chrom, np.zeros(0, np.int64), [], [], [], np.zeros((0, 0, 2), np.int16))
            panel = selection.panel.read(chrom, lo, hi, genome) if selection is not None and vcf is not None else None
            for member in members:
                row = group.index[member]
                center = int(group["center"].iloc[member])
                applied = selection.restrict(table, panel, center) if panel is not None else table
                index = int(loci.index.get_loc(row))
                rows = rows_of(index) if rows_of is not None else None
                yield index, locus_windows(genome, fasta_chrom, center, window_bp, applied, counts, rows)


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate `items` on a background thread, keeping up to `depth` items ready."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    failure: list[BaseException] = []
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as err:  # re-raised in the consumer
            failure.append(err)
        finally:
            buffer.put(done)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                break
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
    if failure:
        raise failure[0]


def locus_strands(loci: pd.DataFrame) -> np.ndarray:
    """Each locus's strand ('+', '-', or '.' for peaks and tables without a strand column): a stranded predictor
    reads the tracks of the locus's strand."""
    if "strand" not in loci.columns:
        return np.full(len(loci), ".", dtype="<U1")
    return loci["strand"].fillna(".").astype(str).to_numpy(dtype="<U1")


def _blocks(locus_windows_iter: Iterable[tuple[int, LocusWindows]], block_windows: int) -> Iterator[list]:
    """Group loci so that each block holds at least `block_windows` windows (one predictor call per block)."""
    block, size = [], 0
    for item in locus_windows_iter:
        block.append(item)
        size += item[1].n_unique
        if size >= block_windows:
            yield block
            block, size = [], 0
    if block:
        yield block


def predict_loci(
    predictor: Predictor,
    genome: Genome,
    loci: pd.DataFrame,
    vcf: VcfReader | None = None,
    block_windows: int | None = None,
    progress: bool = True,
    selection: LinearizableVariants | None = None,
    rows_of: Callable[[int], np.ndarray | None] | None = None,
) -> Iterator[LocusPrediction]:
    """Predict the distinct windows of every locus (or those `rows_of` names), batching windows of several loci into
    one call."""
    block_windows = block_windows or max(4 * getattr(predictor, "batch_size", 8), 32)

    strands = locus_strands(loci)

    def blocks() -> Iterator[tuple[list, np.ndarray, np.ndarray]]:
        source = iter_locus_windows(genome, loci, predictor.window_bp, vcf, selection, rows_of)
        for block in _blocks(source, block_windows):
            yield (block, np.concatenate([w.windows for _, w in block]),
                   np.concatenate([np.repeat(strands[i : i + 1], w.n_unique) for i, w in block]))

    bar = progress_bar(total=len(loci), unit="locus", desc="predict", disable=not progress, leave=False)
    try:
        for block, stacked, block_strands in prefetch(blocks()):
            features = predictor.predict(stacked, block_strands)
            offset = 0
            for locus_index, windows in block:
                n = windows.n_unique
                yield LocusPrediction(locus_index, windows, features[offset : offset + n])
                offset += n
            bar.update(len(block))
    finally:
        bar.close()


def collect_feature_store(
    predictions: Iterable[LocusPrediction], locus_ids: list[str], samples: list[str], meta: dict
) -> FeatureStore:
    """Assemble streamed locus predictions into a FeatureStore (rows in loci order)."""
    by_locus = sorted(predictions, key=lambda p: p.locus_index)
    blocks, row_locus, reference_row, haplotype_row = [], [], [], []
    offset = 0
    for p in by_locus:
        blocks.append(p.features)
        row_locus.append(np.full(len(p.features), p.locus_index, np.int32))
        reference_row.append(offset)
        haplotype_row.append(p.windows.haplotype_window + offset)
        offset += len(p.features)
    n_samples = len(samples)
    return FeatureStore(
        locus_ids=locus_ids,
        samples=samples,
        features=np.concatenate(blocks) if blocks else np.zeros((0, 1, 0), np.float32),
        row_locus=np.concatenate(row_locus) if row_locus else np.zeros(0, np.int32),
        reference_row=np.array(reference_row, dtype=np.int32),
        haplotype_row=np.stack(haplotype_row).astype(np.int32) if n_samples else np.zeros((len(by_locus), 0, 2), np.int32),
        meta=meta,
    )


def dedup_summary(store: FeatureStore) -> dict:
    """How many windows were predicted versus how many haplotype windows (+ references) they stand for."""
    n_loci, n_samples = len(store.locus_ids), len(store.samples)
    total = n_loci * (2 * n_samples + 1)
    unique = len(store.features)
    return {"loci": n_loci, "samples": n_samples, "haplotype_windows": total, "predicted_windows": unique,
            "fraction_predicted": unique / total if total else float("nan")}

