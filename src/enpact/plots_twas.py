"""TWAS plots: QQ plot of gene p-values and Manhattan plot by gene position (PNG, matplotlib Agg), in the shared
plot style of enpact.plots_training."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox
from scipy import stats

from enpact.plots_training import (
    CHROMOSOME_COLOURS,
    LABEL_FONT_SIZE,
    POINT_SIZE,
    PRIMARY_COLOUR,
    SIGNIFICANCE_COLOUR,
    new_figure,
    plot_style,
    save_figure,
)
from enpact.genome import natural_chromosome_key

log = logging.getLogger(__name__)

SIGNIFICANCE_COLOR = SIGNIFICANCE_COLOUR  # former names, kept for importers
CHROMOSOME_COLORS = CHROMOSOME_COLOURS
CHROMOSOME_GAP_FRACTION = 0.1  # all gaps between chromosomes together take this share of the x axis
LABEL_PAD_PX = 1.0  # labels closer than this (pixels) count as touching


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


@plot_style
def qq_plot(pvalues: np.ndarray, path: str | Path, title: str | None = None) -> Figure:
    """Observed vs expected -log10 p with a 95% band under the uniform null; returns the saved figure."""
    p = np.sort(_finite_pvalues(pvalues))
    n = p.size
    figure, (axes,) = new_figure(1)
    if n:
        rank = np.arange(1, n + 1)
        expected = -np.log10((rank - 0.5) / n)
        low = -np.log10(stats.beta.ppf(0.975, rank, n - rank + 1))
        high = -np.log10(stats.beta.ppf(0.025, rank, n - rank + 1))
        axes.fill_between(expected, low, high, color="0.85", label="95% null band", linewidth=0)
        axes.scatter(expected, -np.log10(p), s=POINT_SIZE, color=PRIMARY_COLOUR, label="genes", zorder=3)
        top = max(expected.max(), high.max(), (-np.log10(p)).max()) * 1.05
        axes.plot([0, top], [0, top], color="0.4", linewidth=1, linestyle="--")
        axes.set_xlim(0, expected.max() * 1.05)
        axes.set_ylim(0, top)
        axes.legend(loc="upper left")
    heading = f"λ_GC = {genomic_inflation(p):.3f}, {n} gene{'' if n == 1 else 's'}" if n else "no tested genes"
    axes.set_title(f"{title}\n{heading}" if title else heading)
    axes.set_xlabel("expected -log10(p)")
    axes.set_ylabel("observed -log10(p)")
    axes.set_box_aspect(1)
    save_figure(figure, path)
    return figure


def chromosome_offsets(
    chroms: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[tuple[float, str]]]:
    """x of every gene with chromosomes side by side in natural order, each gene's chromosome index in that order,
    and (centre, name) ticks; names are kept as given (chr1 stays chr1, 1 stays 1); the gaps between
    chromosomes together take CHROMOSOME_GAP_FRACTION of the axis."""
    names, inverse = np.unique(np.asarray(chroms, dtype=str), return_inverse=True)
    order = sorted(range(len(names)), key=lambda i: natural_chromosome_key(names[i]))
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    chrom_index = rank[inverse.reshape(-1)]
    n = len(names)
    start = np.full(n, np.inf)
    end = np.full(n, -np.inf)
    np.minimum.at(start, chrom_index, positions)
    np.maximum.at(end, chrom_index, positions)
    span = np.where(np.isfinite(start), end - start, 0.0)
    gap = max(span.sum() * CHROMOSOME_GAP_FRACTION / max(n, 1), 1.0)
    offset = np.concatenate([[0.0], np.cumsum(span + gap)[:-1]])
    x = positions - start[chrom_index] + offset[chrom_index]
    ticks = [(float(offset[k] + span[k] / 2), str(names[i])) for k, i in enumerate(order)]
    return x, chrom_index, ticks


def _free(box: Bbox, inside: Bbox, taken: np.ndarray) -> bool:
    """A label box lies inside the axes and touches none of the taken boxes (rows x0, y0, x1, y1; pixels)."""
    if box.x0 < inside.x0 or box.x1 > inside.x1 or box.y0 < inside.y0 or box.y1 > inside.y1:
        return False
    x0, y0, x1, y1 = box.x0 - LABEL_PAD_PX, box.y0 - LABEL_PAD_PX, box.x1 + LABEL_PAD_PX, box.y1 + LABEL_PAD_PX
    return not bool(((x0 < taken[:, 2]) & (taken[:, 0] < x1) & (y0 < taken[:, 3]) & (taken[:, 1] < y1)).any())


def place_labels(axes: Axes, x: np.ndarray, y: np.ndarray, names: Sequence[str], renderer: RendererBase,
                 obstacles: Sequence[Bbox] = ()) -> list[Annotation]:
    """Label points in the given order without overlaps (with each other, the labelled points and `obstacles`):
    beside the point, else staggered up or down by whole label heights (with a leader line), else on the left;
    a label that fits nowhere is left out (and counted in the log)."""
    inside = axes.get_window_extent(renderer)
    centre = axes.transData.transform(np.column_stack([x, y])) if len(x) else np.empty((0, 2))
    radius = np.sqrt(POINT_SIZE) / 2 * renderer.points_to_pixels(1.0)
    taken = np.vstack([np.array([[b.x0, b.y0, b.x1, b.y1] for b in obstacles]).reshape(-1, 4),
                       np.hstack([centre - radius, centre + radius])])
    step = LABEL_FONT_SIZE * 1.4  # one label height, points
    rows = (0, 1, -1, 2, -2, 3, -3)
    candidates = [(3.0, 2.0 + k * step, "left") for k in rows] + [(-3.0, 2.0 + k * step, "right") for k in rows]
    line = {"arrowstyle": "-", "color": "0.5", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 2}
    placed, skipped = [], 0
    for xi, yi, name in zip(x, y, names):
        for dx, dy, align in candidates:
            leader = line if dy != 2.0 else None
            label = axes.annotate(str(name), (xi, yi), xytext=(dx, dy), textcoords="offset points",
                                  fontsize=LABEL_FONT_SIZE, ha=align, va="bottom", annotation_clip=False,
                                  arrowprops=leader)
            label.update_positions(renderer)
            box = Text.get_window_extent(label, renderer)  # the text alone, not its leader line
            if _free(box, inside, taken):
                taken = np.vstack([taken, [[box.x0, box.y0, box.x1, box.y1]]])
                placed.append(label)
                break
            label.remove()
        else:
            skipped += 1
    if skipped:
        log.info("Manhattan plot: %d gene labels left out where they would overlap others", skipped)
    return placed


@plot_style
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
    """-log10 p by genomic position, chromosomes side by side (named as given), the Bonferroni 0.05 line, and
    the top genes above it labelled without overlaps; returns the saved figure."""
    chroms = np.asarray(chroms, dtype=object).astype(str).astype(object)
    positions = np.asarray(positions, dtype=np.float64)
    p = np.asarray(pvalues, dtype=np.float64)
    keep = np.isfinite(p) & np.isfinite(positions)
    chroms, positions, p = chroms[keep], positions[keep], np.maximum(p[keep], np.finfo(np.float64).tiny)
    names = np.asarray(labels, dtype=object)[keep] if labels is not None else None
    figure, (axes,) = new_figure(1)
    x, chrom_index, ticks = chromosome_offsets(chroms, positions)
    y = -np.log10(p)
    for parity in (0, 1):  # alternate colours by chromosome
        members = chrom_index % 2 == parity
        axes.scatter(x[members], y[members], s=POINT_SIZE, color=CHROMOSOME_COLOURS[parity], linewidths=0)
    tests = n_tests if n_tests else p.size
    threshold = -np.log10(0.05 / tests) if tests else np.inf
    if tests:
        axes.axhline(threshold, color=SIGNIFICANCE_COLOUR, linestyle="--", linewidth=1,
                     label=f"Bonferroni 0.05 ({tests} genes)")
        axes.legend(loc="upper right")
    axes.set_xticks([t for t, _ in ticks], [label for _, label in ticks])
    axes.set_xlabel("chromosome")
    axes.set_ylabel("-log10(p)")
    highest = max(y.max() if y.size else 1.0, threshold if tests else 1.0)
    axes.set_ylim(0, highest * 1.15)
    if ticks:
        span = max(x.max() - x.min(), 1.0) if x.size else 1.0
        axes.set_xlim(x.min() - 0.01 * span, x.max() + 0.01 * span)
    axes.set_title(title or "TWAS")
    if names is not None and tests:
        # freeze the layout first: labels are placed in pixels, and a later re-layout would move them
        figure.draw_without_rendering()
        figure.set_layout_engine("none")
        renderer = figure.canvas.get_renderer()
        hits = np.flatnonzero(y > threshold)
        top = hits[np.argsort(p[hits], kind="stable")][:n_labels]
        legend = axes.get_legend()
        obstacles = [legend.get_window_extent(renderer)] if legend is not None else []
        place_labels(axes, x[top], y[top], names[top], renderer, obstacles)
    save_figure(figure, path)
    return figure
