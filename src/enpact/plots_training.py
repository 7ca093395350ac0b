"""Plots of an EnPACT model's fit: observed vs predicted per split, and model vs single-track baseline."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

log = logging.getLogger(__name__)

SPLIT_COLOURS = {"train": "#7f7f7f", "valid": "#1f77b4", "test": "#d62728"}
MODEL_COLOUR, BASELINE_COLOUR = "#2ca02c", "#bcbcbc"


def _format_r(value: float | None) -> str:
    """r for a title or label: three decimals, or 'n/a'."""
    return "n/a" if value is None else f"{value:.3f}"


def plot_observed_vs_predicted(
    observed: np.ndarray,
    predicted: np.ndarray,
    splits: np.ndarray,
    metrics: Mapping[str, Mapping | None],
    path: str | Path,
    split_names: tuple[str, ...] = ("train", "valid", "test"),
) -> Path:
    """One scatter panel per split (observed on y, predicted on x, identity line), r and n in each title."""
    fig = Figure(figsize=(4.2 * len(split_names), 4.2), layout="constrained")
    axes = fig.subplots(1, len(split_names), squeeze=False)[0]
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
            ax.scatter(predicted[mask], observed[mask], s=6, alpha=alpha, color=SPLIT_COLOURS.get(name, "k"),
                       linewidths=0, rasterized=True)
        else:
            ax.text(0.5, 0.5, "no loci", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.plot(limits, limits, color="0.3", linewidth=0.8, linestyle="--")
        ax.set_xlim(limits)
        ax.set_ylim(limits)
        ax.set_title(f"{name} (n={int(mask.sum())}): r = {_format_r(stats.get('pearson_r'))}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("observed")
    fig.savefig(path, dpi=110)
    return Path(path)


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
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    for offset, values, colour, label in (
        (-width / 2, model_r, MODEL_COLOUR, "EnPACT model"),
        (width / 2, baseline_r, BASELINE_COLOUR, f"baseline: {baseline_label}"),
    ):
        heights = [np.nan if v is None else v for v in values]
        bars = ax.bar(positions + offset, heights, width, color=colour, label=label)
        for bar, value in zip(bars, values):
            y = 0.0 if value is None else value
            ax.annotate(_format_r(value), (bar.get_x() + bar.get_width() / 2, y), ha="center",
                        va="bottom" if y >= 0 else "top", fontsize=8, xytext=(0, 2), textcoords="offset points")
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.set_xticks(positions, list(split_names))
    ax.set_ylabel("Pearson r (observed vs predicted)")
    finite = [v for v in model_r + baseline_r if v is not None]
    ax.set_ylim(min(0.0, min(finite, default=0.0)) - 0.05, 1.05)
    ax.set_title("EnPACT model vs single-track baseline")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.08), fontsize=8, frameon=False)
    fig.savefig(path, dpi=110)
    return Path(path)
