"""What a lower numeric precision costs: personalized predictions at each precision against fp32.

Between-individual differences of personalized predictions are differences of two forward passes, small next to
the values themselves, and a lower precision (bf16 keeps 8 bits of mantissa) can erase them. For a sample of loci x
individuals this runs the predictor and the EnPACT model at fp32 and at each precision asked for, and reports per
locus the across-individual correlation with fp32 and the error relative to the between-individual spread, and per
precision the time per window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from enpact.genome import Genome
from enpact.models.base import EnpactModel
from enpact.personalize import personalize
from enpact.predictors import Predictor
from enpact.variants import VcfReader

log = logging.getLogger(__name__)

SPREAD_FLOOR = 1e-12  # a locus whose fp32 values do not vary across individuals has no spread to compare with


@dataclass
class AuditResult:
    """Per locus x precision comparisons with fp32, and per precision timings."""

    loci: pd.DataFrame     # precision, locus_id, r_with_fp32, relative_error, sd_fp32
    summary: pd.DataFrame  # precision, loci, median_r, loci_r_below_0.5, median_relative_error, seconds_per_window


def sample_evenly(items: list, n: int) -> list:
    """Up to n items spread evenly over the list (deterministic)."""
    if len(items) <= n:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).astype(int)]


def compare_with_fp32(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row (locus): Pearson r across columns (individuals), RMS difference over the fp32 SD, and the fp32 SD."""
    a = reference - reference.mean(axis=1, keepdims=True)
    b = other - other.mean(axis=1, keepdims=True)
    sd = np.sqrt((a * a).mean(axis=1))
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denominator > 0, (a * b).sum(axis=1) / denominator, np.nan)
        error = np.sqrt(((other - reference) ** 2).mean(axis=1)) / np.where(sd > SPREAD_FLOOR, sd, np.nan)
    return r, error, sd


def audit_precisions(genome: Genome, loci: pd.DataFrame, vcf: VcfReader, model: EnpactModel, weights: str,
                     precisions: list[str], predictor_at: Callable[[str], Predictor]) -> AuditResult:
    """Personalized predictions of `loci` x the VCF's samples at fp32 and each precision (`predictor_at`: the
    model's predictor at a precision); their comparison."""
    spec = model.feature_spec
    values, seconds = {}, {}
    for precision in ["fp32", *[p for p in precisions if p != "fp32"]]:
        predictor = predictor_at(precision)
        started = time.perf_counter()
        store = personalize(genome, loci, vcf, model, predictor, progress=False, weights_moved=weights != spec.weights,
                            allow_precision_mismatch=True)
        values[precision] = store.individual_values()
        seconds[precision] = (predictor.seconds or time.perf_counter() - started) / max(predictor.windows_predicted, 1)
        log.info("%s: %.4f s per window", precision, seconds[precision])
    rows, summary = [], []
    for precision in values:
        if precision == "fp32":
            continue
        r, error, sd = compare_with_fp32(values["fp32"], values[precision])
        rows.append(pd.DataFrame({"precision": precision, "locus_id": loci["locus_id"].to_numpy(),
                                  "r_with_fp32": r, "relative_error": error, "sd_fp32": sd}))
        summary.append({"precision": precision, "loci": int(np.isfinite(r).sum()),
                        "median_r": float(np.nanmedian(r)) if np.isfinite(r).any() else np.nan,
                        "loci_r_below_0.5": int((r < 0.5).sum()),
                        "median_relative_error": float(np.nanmedian(error)) if np.isfinite(error).any() else np.nan,
                        "seconds_per_window": seconds[precision]})
    summary.insert(0, {"precision": "fp32", "loci": len(loci), "median_r": 1.0, "loci_r_below_0.5": 0,
                       "median_relative_error": 0.0, "seconds_per_window": seconds["fp32"]})
    per_locus = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["precision", "locus_id", "r_with_fp32", "relative_error", "sd_fp32"])
    return AuditResult(per_locus, pd.DataFrame(summary))
