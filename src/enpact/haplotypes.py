"""Haplotype windows: reference plus one haplotype's variants, centred on the image of the locus centre.

Windows of one locus are deduplicated by the applied variants that change the window's sequence (`window_keys`)
before they are built, so that every distinct window is built (and later predicted) once; the reference window is
always row 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from enpact.genome import N_INDEX, Genome, encode, window_start
from enpact.variants import VariantCounts, VariantTable, applied_alleles, is_symbolic


@dataclass
class LocusWindows:
    """Distinct windows of one locus and which window each haplotype gets."""

    windows: np.ndarray  # (n_built, window_bp) uint8: every distinct window (row 0 = reference), or the `rows` asked
    haplotype_window: np.ndarray  # (n_samples, 2) int32 distinct-window index of each haplotype
    n_variants: int  # variants that can change this locus's window
    n_distinct: int = -1  # distinct windows of the locus (reference included), built or not
    rows: np.ndarray | None = None  # the distinct-window indexes `windows` holds (None: all, in order)

    def __post_init__(self) -> None:
        if self.n_distinct < 0:
            self.n_distinct = len(self.windows)

    @property
    def n_unique(self) -> int:
        """Number of windows built (every distinct window unless `rows` chose some)."""
        return len(self.windows)


@dataclass
class _Edit:
    """One applied variant, in reference coordinates relative to the region start."""

    start: int
    ref_len: int
    alt: np.ndarray


def max_shift(table: VariantTable) -> int:
    """Upper bound on how far indels of this table can shift coordinates (sum of length changes)."""
    if not len(table):
        return 0
    ref_len = table.ref_len
    total = 0
    for r, alts in zip(ref_len.tolist(), table.alts):
        total += max((abs(len(a) - r) for a in alts), default=0)
    return total


def relevant_variants(table: VariantTable, center: int, window_bp: int) -> np.ndarray:
    """Indexes of variants that can change the content of the window centred on `center`."""
    start = window_start(center, window_bp)
    nearby = table.overlapping(start - window_bp // 2, start + window_bp + window_bp // 2)
    reach = max_shift(table.subset(nearby)) if len(nearby) else 0
    return table.overlapping(start - reach, start + window_bp + reach)


def _resolve_overlaps(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mask of variants kept when earlier variants win over later overlapping ones (as bcftools consensus)."""
    keep = np.ones(len(starts), dtype=bool)
    if len(starts) < 2 or not np.any(starts[1:] < np.maximum.accumulate(ends)[:-1]):
        return keep
    last_end = -1
    for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
        if s < last_end:
            keep[i] = False
        else:
            last_end = e
    return keep


def _indel_slide(reference: np.ndarray, start: int, deleted: int, inserted: np.ndarray | None) -> tuple[int, int]:
    """How many bases a pure deletion of reference[start:start + deleted], or a pure insertion of `inserted` before
    reference[start], can move left and right through a repeat and still give the same haplotype."""
    n = len(reference)
    left = right = 0
    if inserted is None:
        while start - left - 1 >= 0 and reference[start - left - 1] == reference[start + deleted - left - 1]:
            left += 1
        while start + deleted + right < n and reference[start + right] == reference[start + deleted + right]:
            right += 1
    else:
        m = len(inserted)
        while start - left - 1 >= 0 and reference[start - left - 1] == inserted[(-left - 1) % m]:
            left += 1
        while start + right < n and reference[start + right] == inserted[right % m]:
            right += 1
    return left, right


def _allele_changes(table: VariantTable, reference: np.ndarray, reference_start: int) -> tuple[np.ndarray, ...]:
    """Per (variant, allele index; 0 = REF): the allele's length, the leading bases it shares with REF, the REF and
    allele lengths left once the bases both share at either end are removed (what the allele really changes), and
    how far a pure insertion or deletion can slide left and right through a reference repeat."""
    n_alleles = max((len(alts) for alts in table.alts), default=0) + 1
    length = np.repeat(table.ref_len[:, None], n_alleles, axis=1).astype(np.int64)
    shared, ref_changed, alt_changed, left, right = (np.zeros((len(table), n_alleles), np.int64) for _ in range(5))
    for v, (ref, alts) in enumerate(zip(table.ref, table.alts)):
        ref = ref.upper()
        for k, alt in enumerate(alts, start=1):
            if is_symbolic(alt):   # never applied (applied_alleles reads it as REF)
                continue
            alt = alt.upper()
            prefix = next((i for i, (r, a) in enumerate(zip(ref, alt)) if r != a), min(len(ref), len(alt)))
            suffix = next((i for i, (r, a) in enumerate(zip(ref[prefix:][::-1], alt[prefix:][::-1])) if r != a),
                          min(len(ref), len(alt)) - prefix)
            length[v, k], shared[v, k] = len(alt), prefix
            ref_changed[v, k], alt_changed[v, k] = len(ref) - prefix - suffix, len(alt) - prefix - suffix
            if (ref_changed[v, k] == 0) != (alt_changed[v, k] == 0):   # a pure deletion or insertion
                inserted = encode(alt[prefix:len(alt) - suffix]) if alt_changed[v, k] else None
                left[v, k], right[v, k] = _indel_slide(reference, int(table.pos[v]) + prefix - reference_start,
                                                       int(ref_changed[v, k]), inserted)
    return length, shared, ref_changed, alt_changed, left, right


def window_keys(keys: np.ndarray, table: VariantTable, center: int, window_bp: int, reference: np.ndarray,
                reference_start: int) -> tuple[np.ndarray, np.ndarray]:
    """Each haplotype key (allele index per variant of `table`) reduced to the applied variants that change the window
    centred on the image of `center` (the others set to 0), and the records each key skips as overlapping.

    A variant changes the window when the bases it changes lie inside the window in haplotype coordinates (after the
    shifts of the indels before it), also once an indel has slid outwards through a repeat as far as it can, or when
    it holds the centre (it places the window): two haplotypes with the same reduced key have the same window
    sequence, whatever else they carry. `reference` holds the bases from `reference_start` around every variant.
    """
    n_var, n_keys = len(table), len(keys)
    pos, ref_len = table.pos.astype(np.int64), table.ref_len.astype(np.int64)
    ends = pos + ref_len
    applied = keys > 0
    kept = applied.copy()
    if n_var > 1 and np.any(pos[1:] < np.maximum.accumulate(ends)[:-1]):   # overlapping records: earlier ones win
        for row in np.flatnonzero(applied.any(axis=1)):
            columns = np.flatnonzero(applied[row])
            kept[row, columns] = _resolve_overlaps(pos[columns], ends[columns])
    allele = np.where(kept, keys, 0).astype(np.int64)
    length, shared, ref_changed, alt_changed, left, right = _allele_changes(table, reference, reference_start)
    # where the window lies in each haplotype: the indels before the centre shift it (as build_haplotype_window)
    indels = np.flatnonzero((length != ref_len[:, None]).any(axis=1))
    shift = length[indels, allele[:, indels]] - ref_len[indels]                 # (n_keys, n_indels)
    before_indel = np.concatenate([np.zeros((n_keys, 1), np.int64), np.cumsum(shift, axis=1)], axis=1)
    image = center + (shift * (ends[indels] <= center)).sum(axis=1)
    holders = np.flatnonzero((pos <= center) & (center < ends))
    for h in holders:   # a kept variant holding the centre places the window (kept variants do not overlap)
        before_h = before_indel[:, np.searchsorted(indels, h)]
        image = np.where(kept[:, h], pos[h] + before_h + np.minimum(center - pos[h], length[h, allele[:, h]] - 1),
                         image)
    lo = (image - window_bp // 2)[:, None]
    # far from the window's edges a variant is inside (or outside) for every haplotype; only those near need work
    reach = int(np.abs(length[indels] - ref_len[indels, None]).max(axis=1).sum())
    slide = int(max(left.max(initial=0), right.max(initial=0)))
    margin = reach + 2 * slide + 2 * int(max(length.max(initial=0), ref_len.max(initial=0))) + 2
    start = center - window_bp // 2
    inside = (pos >= start + margin) & (ends <= start + window_bp - margin)
    near = np.flatnonzero(~inside & (ends > start - margin) & (pos < start + window_bp + margin))
    reduced = np.where(kept & inside, keys, 0)
    if len(near):
        kept_near, allele_near = kept[:, near], allele[:, near]
        shared_near, ref_near, alt_near, left_near, right_near = (a[near, allele_near] for a in
                                                                  (shared, ref_changed, alt_changed, left, right))
        change_ref_start = pos[near] + shared_near
        change_ref_end = change_ref_start + ref_near
        # an indel slides away from the centre, and only over bases no other applied variant touches
        far = np.iinfo(np.int64).max
        previous_end = np.maximum.accumulate(np.where(kept_near, ends[near], -1), axis=1)
        previous_end = np.concatenate([np.full((n_keys, 1), -1), previous_end[:, :-1]], axis=1)
        next_start = np.minimum.accumulate(np.where(kept_near, pos[near], far)[:, ::-1], axis=1)[:, ::-1]
        next_start = np.concatenate([next_start[:, 1:], np.full((n_keys, 1), far)], axis=1)
        left_near = np.where(change_ref_end <= center, np.minimum(left_near, change_ref_start - previous_end), 0)
        right_near = np.where(change_ref_start > center, np.minimum(right_near, next_start - change_ref_end), 0)
        change_start = pos[near] + before_indel[:, np.searchsorted(indels, near)] + shared_near   # haplotype span
        change_end = change_start + alt_near
        changes = (kept_near & ((ref_near + alt_near) > 0)
                   & (change_start + right_near < lo + window_bp) & (change_end - left_near > lo))
        reduced[:, near] = np.where(changes, keys[:, near], 0)
    reduced[:, holders] = np.where(kept[:, holders], keys[:, holders], 0)
    return reduced.astype(keys.dtype), (applied & ~kept).sum(axis=1)


def build_haplotype_window(
    reference: np.ndarray, region_start: int, center: int, window_bp: int, edits: list[_Edit]
) -> np.ndarray:
    """Apply sorted, non-overlapping edits to a reference region and cut the window around the centre's image."""
    c = center - region_start
    snv_pos, snv_base, pieces = [], [], []
    cursor, shift, center_image = 0, 0, None
    indel_edits = []
    for edit in edits:
        if edit.ref_len == 1 and len(edit.alt) == 1:
            snv_pos.append(edit.start)
            snv_base.append(edit.alt[0])
        else:
            indel_edits.append(edit)
    # Splice indels; SNVs are scattered afterwards at their shifted positions (vectorised).
    indel_starts = np.array([e.start for e in indel_edits], dtype=np.int64)
    indel_shift = np.array([len(e.alt) - e.ref_len for e in indel_edits], dtype=np.int64)
    for edit in indel_edits:
        pieces.append(reference[cursor : edit.start])
        pieces.append(edit.alt)
        if center_image is None and edit.start <= c < edit.start + edit.ref_len:
            center_image = edit.start + shift + min(c - edit.start, len(edit.alt) - 1)
        cursor = edit.start + edit.ref_len
        shift += len(edit.alt) - edit.ref_len
    pieces.append(reference[cursor:])
    haplotype = np.concatenate(pieces) if len(pieces) > 1 else reference.copy()
    indel_ends = indel_starts + np.array([e.ref_len for e in indel_edits], dtype=np.int64)
    if center_image is None:
        before = indel_ends <= c
        center_image = c + int(indel_shift[before].sum())
    if snv_pos:
        snv_pos_arr = np.array(snv_pos, dtype=np.int64)
        cumulative = np.concatenate([[0], np.cumsum(indel_shift)])
        n_before = np.searchsorted(indel_ends, snv_pos_arr, side="right")
        haplotype[snv_pos_arr + cumulative[n_before]] = np.array(snv_base, dtype=np.uint8)
    lo = center_image - window_bp // 2
    window = np.full(window_bp, N_INDEX, dtype=np.uint8)
    src_lo, src_hi = max(lo, 0), min(lo + window_bp, len(haplotype))
    if src_hi > src_lo:
        window[src_lo - lo : src_hi - lo] = haplotype[src_lo:src_hi]
    return window


def _fill_snv_only_windows(
    windows: np.ndarray, keys: np.ndarray, table: VariantTable, alt_codes: list, start: int, window_bp: int
) -> np.ndarray:
    """Build, in one scatter, every window whose applied variants are all SNVs; returns which rows were built.

    SNVs do not move coordinates, so such a window is the reference window with bases replaced. Row 0 (the
    reference) counts as built. Loci with two SNV records at one position take the general path.
    """
    built = np.zeros(len(keys), dtype=bool)
    built[0] = True
    snv_site = np.array([len(r) == 1 and all(len(a) == 1 for a in alts) for r, alts in zip(table.ref, table.alts)])
    if len(np.unique(table.pos[snv_site])) != int(snv_site.sum()):
        return built
    applied = keys > 0
    simple = ~(applied & ~snv_site).any(axis=1)
    simple[0] = False
    if not simple.any():
        return built
    rows = np.flatnonzero(simple)
    windows[rows] = windows[0]
    inside = snv_site & (table.pos >= start) & (table.pos < start + window_bp)
    max_alleles = max(len(a) for a in table.alts) + 1
    base = np.full((len(table), max_alleles), 4, dtype=np.uint8)
    for v in np.flatnonzero(inside):
        for k, code in enumerate(alt_codes[v], start=1):
            base[v, k] = code[0]
    sub_keys = keys[rows][:, inside]
    r, c = np.nonzero(sub_keys > 0)
    columns = np.flatnonzero(inside)[c]
    windows[rows[r], table.pos[columns] - start] = base[columns, sub_keys[r, c]]
    built[rows] = True
    return built


def locus_windows(
    genome: Genome,
    chrom: str,
    center: int,
    window_bp: int,
    table: VariantTable,
    counts: VariantCounts | None = None,
    rows: np.ndarray | None = None,
) -> LocusWindows:
    """All distinct haplotype windows of one locus for every sample of `table` (reference first); with `rows`, only
    those distinct windows are built (the identities of all are still decided: a plan builds none)."""
    n_samples = table.alleles.shape[1]
    relevant = relevant_variants(table, center, window_bp) if len(table) else np.zeros(0, np.int64)
    start = window_start(center, window_bp)
    reference_window = genome.fetch(chrom, start, start + window_bp)
    if len(relevant) == 0:
        built = reference_window[None, :] if rows is None or 0 in rows else np.zeros((0, window_bp), np.uint8)
        return LocusWindows(built, np.zeros((n_samples, 2), np.int32), 0, 1, rows)
    sub = table.subset(relevant)
    alleles = applied_alleles(sub)  # (n_var, 2 * n_samples)
    keys = np.concatenate([np.zeros((len(sub), 1), alleles.dtype), alleles], axis=1).T
    ref_len = sub.ref_len
    region_start = int(min(sub.pos.min(), start)) - window_bp
    region_end = int(max((sub.pos + ref_len).max(), start + window_bp)) + window_bp
    region = genome.fetch(chrom, region_start, region_end)
    carried, carried_inverse = np.unique(keys, axis=0, return_inverse=True)
    # windows are identified by the variants that change them, not by everything a haplotype carries nearby
    reduced, skipped = window_keys(carried, sub, center, window_bp, region, region_start)
    unique_keys, reduced_inverse = np.unique(reduced, axis=0, return_inverse=True)
    reduced_inverse = reduced_inverse.reshape(-1)
    inverse = reduced_inverse[carried_inverse.reshape(-1)]
    # The all-reference key (row 0 of keys) sorts first because allele indexes are >= 0.
    alt_codes = [[encode(a) for a in alts] for alts in sub.alts]
    # the windows to build: all, or the rows asked (the reference key first: the SNV-only fill copies it)
    chosen = np.arange(len(unique_keys)) if rows is None else np.asarray(rows, dtype=np.int64)
    built_keys = np.concatenate([[0], chosen[chosen != 0]]) if rows is not None else chosen
    keys_to_build = unique_keys[built_keys]
    windows = np.full((len(keys_to_build), window_bp), N_INDEX, dtype=np.uint8)
    windows[0] = reference_window
    starts = sub.pos - region_start
    ends = starts + ref_len
    snv_only = _fill_snv_only_windows(windows, keys_to_build, sub, alt_codes, start, window_bp)
    if counts is not None:   # per haplotype, for the windows built here (each is built once over a plan's parts)
        carriers = np.bincount(carried_inverse.reshape(-1)[1:], minlength=len(carried))
        per_window = np.bincount(reduced_inverse, weights=skipped * carriers, minlength=len(unique_keys))
        counts.overlapping_skipped += int(per_window[chosen].sum())
    for b in np.flatnonzero(~snv_only):
        u = built_keys[b]
        key = unique_keys[u]
        applied = np.flatnonzero(key > 0)
        keep = _resolve_overlaps(starts[applied], ends[applied])
        edits = [_Edit(int(starts[v]), int(ref_len[v]), alt_codes[v][key[v] - 1]) for v in applied[keep]]
        windows[b] = build_haplotype_window(region, region_start, center, window_bp, edits)
    haplotype_window = inverse[1:].reshape(n_samples, 2).astype(np.int32)
    if rows is not None:   # back to the order asked (the reference dropped unless asked)
        position = {int(u): i for i, u in enumerate(built_keys)}
        windows = windows[[position[int(u)] for u in chosen]]
    return LocusWindows(windows, haplotype_window, len(relevant), len(unique_keys), rows)
