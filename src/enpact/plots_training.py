"""Plots of an EnPACT model's fit (observed vs predicted per split, model vs single-track baseline), and the one
plot style every figure of a run uses (these plots, the TWAS plots and the report's own plots)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from enpact.io import atomic_path

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------
# one size and style for every plot (used by plots_twas.py and report.py too)

FIGURE_SIZE: tuple[float, float] = (10.0, 4.0)  # inches: every plot, so the report shows them at one scale
FIGURE_DPI = 150
PLOT_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "lines.linewidth": 1.0,
}
LABEL_FONT_SIZE = 7.0  # gene labels inside plots
POINT_SIZE = 8.0
SPLIT_COLOURS = {"train": "#7f7f7f", "valid": "#1f77b4", "test": "#d62728"}
MODEL_COLOUR, BASELINE_COLOUR = "#2ca02c", "#bcbcbc"
PRIMARY_COLOUR, NULL_COLOUR, SIGNIFICANCE_COLOUR = "#1f4e79", "#9e9e9e", "#c0392b"
CHROMOSOME_COLOURS = (PRIMARY_COLOUR, "#7f9fbf")

_Plot = TypeVar("_Plot", bound=Callable[..., Any])


def plot_style(function: _Plot) -> _Plot:
    """Decorator: draw and save the whole plot under PLOT_STYLE (ticks and labels are made as late as saving)."""
    @functools.wraps(function)
    def styled(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context(PLOT_STYLE):
            return function(*args, **kwargs)

    return styled  # type: ignore[return-value]


def new_figure(ncols: int = 1) -> tuple[Figure, np.ndarray]:
    """A FIGURE_SIZE figure (constrained layout, Agg canvas, FIGURE_DPI) with `ncols` axes side by side."""
    figure = Figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(1, ncols, squeeze=False)[0]


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write a figure as PNG at FIGURE_DPI, atomically (a temporary file in the target folder, then rename)."""
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=FIGURE_DPI)
    return Path(path)


# ---------------------------------------------------------------------------------------------------------
# model fit


def _format_r(value: float | None) -> str:
    """r for a title or label: three decimals, or 'n/a'."""
    return "n/a" if value is None else f"{value:.3f}"


@plot_style
def plot_observed_vs_predicted(
    observed: np.ndarray,
    predicted: np.ndarray,
    splits: np.ndarray,
    metrics: Mapping[str, Mapping | None],
    path: str | Path,
    split_names: tuple[str, ...] = ("train", "valid", "test"),
) -> Path:
    """One scatter panel per split (observed on y, predicted on x, identity line), r and n in each title."""
    fig, axes = new_figure(len(split_names))
    finite = np.isfinite(observed) & np.isfinite(predicted)
    if finite.any():
        low = float(min(observed[finite].min(), predicted[finite].min()))
        high = float(max(observed[finite].max(), predicted[finite].max()))
        pad = 0.03 * (high - low or 1.0)
        limits = (low - pad, high + pad)
    else:
        limits = (0.0, 1.0)
    for ax, name in zip(axes, split_names):
        mask = (splits == name) & finite
        stats = metrics.get(name) or {}
        if mask.any():
            alpha = float(np.clip(300.0 / mask.sum(), 0.08, 0.8))
            ax.scatter(predicted[mask], observed[mask], s=POINT_SIZE * 0.75, alpha=alpha,
                       color=SPLIT_COLOURS.get(name, "k"), linewidths=0, rasterized=True)
        else:
            ax.text(0.5, 0.5, "no loci", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.plot(limits, limits, color="0.3", linewidth=0.8, linestyle="--")
        ax.set_xlim(limits)
        ax.set_ylim(limits)
        ax.set_box_aspect(1)
        ax.set_title(f"{name} (n={int(mask.sum())}): r = {_format_r(stats.get('pearson_r'))}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("observed")
    return save_figure(fig, path)


@plot_style
def plot_baseline_comparison(
    model_metrics: Mapping[str, Mapping | None],
    baseline_metrics: Mapping[str, Mapping | None] | None,
    baseline_label: str,
    path: str | Path,
    split_names: tuple[str, ...] = ("train", "valid", "test"),
) -> Path:
    """Grouped bars of Pearson r per split: the model next to the single-track baseline."""
    def r_values(metrics: Mapping[str, Mapping | None] | None) -> list[float | None]:
        return [((metrics or {}).get(name) or {}).get("pearson_r") for name in split_names]

    model_r, baseline_r = r_values(model_metrics), r_values(baseline_metrics)
    positions = np.arange(len(split_names))
    width = 0.38
    fig, (ax,) = new_figure(1)
    for offset, values, colour, label in (
        (-width / 2, model_r, MODEL_COLOUR, "EnPACT model"),
        (width / 2, baseline_r, BASELINE_COLOUR, f"baseline: {baseline_label}"),
    ):
        heights = [np.nan if v is None else v for v in values]
        bars = ax.bar(positions + offset, heights, width, color=colour, label=label)
        for bar, value in zip(bars, values):
            y = 0.0 if value is None else value
            ax.annotate(_format_r(value), (bar.get_x() + bar.get_width() / 2, y), ha="center",
                        va="bottom" if y >= 0 else "top", fontsize=LABEL_FONT_SIZE, xytext=(0, 2),
                        textcoords="offset points")
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.set_xticks(positions, list(split_names))
    ax.set_ylabel("Pearson r (observed vs predicted)")
    finite = [v for v in model_r + baseline_r if v is not None]
    ax.set_ylim(min(0.0, min(finite, default=0.0)) - 0.05, 1.05)
    ax.set_title("EnPACT model vs single-track baseline")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_figure(fig, path)
