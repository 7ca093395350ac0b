"""TWAS plots: QQ plot of gene p-values and Manhattan plot by gene position (PNG, matplotlib Agg)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from enpact.predictdb import natural_chromosome_key, staged_outputs

log = logging.getLogger(__name__)

SIGNIFICANCE_COLOR = "#c0392b"
CHROMOSOME_COLORS = ("#1f4e79", "#7f9fbf")


def _save(figure: Figure, path: str | Path) -> None:
    """Render a figure to PNG atomically."""
    FigureCanvasAgg(figure)
    with staged_outputs([Path(path)]) as (tmp,):
        figure.savefig(tmp, format="png", dpi=150)


def _finite_pvalues(pvalues: np.ndarray) -> np.ndarray:
    """P-values in (0, 1]; zeros become the smallest positive double so -log10 stays finite."""
    p = np.asarray(pvalues, dtype=np.float64)
    p = p[np.isfinite(p) & (p >= 0) & (p <= 1)]
    return np.maximum(p, np.finfo(np.float64).tiny)


def genomic_inflation(pvalues: np.ndarray) -> float:
    """Median chi-square (1 df) of the p-values over its expected value under the null."""
    p = _finite_pvalues(pvalues)
    if not p.size:
        return float("nan")
    return float(np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1))


def qq_plot(pvalues: np.ndarray, path: str | Path, title: str | None = None) -> Figure:
    """Observed vs expected -log10 p with a 95% band under the uniform null; returns the saved figure."""
    p = np.sort(_finite_pvalues(pvalues))
    n = p.size
    figure = Figure(figsize=(5.5, 5.5))
    axes = figure.add_subplot()
    if n:
        rank = np.arange(1, n + 1)
        expected = -np.log10((rank - 0.5) / n)
        low = -np.log10(stats.beta.ppf(0.975, rank, n - rank + 1))
        high = -np.log10(stats.beta.ppf(0.025, rank, n - rank + 1))
        axes.fill_between(expected, low, high, color="0.85", label="95% null band", linewidth=0)
        axes.scatter(expected, -np.log10(p), s=8, color=CHROMOSOME_COLORS[0], label="genes", zorder=3)
        top = max(expected.max(), high.max(), (-np.log10(p)).max()) * 1.05
        axes.plot([0, top], [0, top], color="0.4", linewidth=1, linestyle="--")
        axes.set_xlim(0, expected.max() * 1.05)
        axes.set_ylim(0, top)
        axes.legend(loc="upper left", frameon=False)
    heading = f"λ_GC = {genomic_inflation(p):.3f}, {n} genes" if n else "no tested genes"
    axes.set_title(f"{title}\n{heading}" if title else heading)
    axes.set_xlabel("expected -log10(p)")
    axes.set_ylabel("observed -log10(p)")
    figure.tight_layout()
    _save(figure, path)
    return figure


def manhattan_plot(
    chroms: Sequence[str],
    positions: np.ndarray,
    pvalues: np.ndarray,
    path: str | Path,
    labels: Sequence[str] | None = None,
    n_tests: int | None = None,
    title: str | None = None,
    n_labels: int = 10,
) -> Figure:
    """-log10 p by genomic position, chromosomes side by side, with the Bonferroni 0.05 line; returns the
    saved figure."""
    chroms = np.asarray(chroms, dtype=object)
    positions = np.asarray(positions, dtype=np.float64)
    p = np.asarray(pvalues, dtype=np.float64)
    keep = np.isfinite(p) & np.isfinite(positions)
    chroms, positions, p = chroms[keep], positions[keep], np.maximum(p[keep], np.finfo(np.float64).tiny)
    names = np.asarray(labels, dtype=object)[keep] if labels is not None else None
    order = sorted(set(chroms), key=natural_chromosome_key)
    figure = Figure(figsize=(12, 4.5))
    axes = figure.add_subplot()
    x = np.zeros(p.size)
    offset, ticks = 0.0, []
    for i, chrom in enumerate(order):
        members = chroms == chrom
        start, end = positions[members].min(), positions[members].max()
        x[members] = positions[members] - start + offset
        axes.scatter(x[members], -np.log10(p[members]), s=8, color=CHROMOSOME_COLORS[i % 2])
        ticks.append((offset + (end - start) / 2, str(chrom).removeprefix("chr")))
        offset += (end - start) + max(5e6, 0.02 * (end - start))
    tests = n_tests if n_tests else p.size
    if tests:
        threshold = -np.log10(0.05 / tests)
        axes.axhline(threshold, color=SIGNIFICANCE_COLOR, linestyle="--", linewidth=1,
                     label=f"Bonferroni 0.05 ({tests} genes)")
        axes.legend(loc="upper right", frameon=False)
        if names is not None:
            hits = np.flatnonzero(-np.log10(p) > threshold)
            for index in hits[np.argsort(p[hits])][:n_labels]:
                axes.annotate(str(names[index]), (x[index], -np.log10(p[index])), fontsize=7,
                              xytext=(3, 3), textcoords="offset points")
    axes.set_xticks([t for t, _ in ticks], [label for _, label in ticks], fontsize=8)
    axes.set_xlabel("chromosome")
    axes.set_ylabel("-log10(p)")
    highest = max((-np.log10(p)).max() if p.size else 1.0, -np.log10(0.05 / tests) if tests else 1.0)
    axes.set_ylim(0, highest * 1.1)
    axes.set_title(title or "TWAS")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout()
    _save(figure, path)
    return figure
