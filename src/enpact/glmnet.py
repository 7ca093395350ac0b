"""Per-locus elastic net with cross-validation, as R glmnet's cv.glmnet and PredictDB compute it.

`fit_elastic_net_cv` reproduces what PredictDB's `fast_elasticnet.R` does for one gene with
`cv.glmnet(x, y, alpha = 0.5, type.measure = "mse", foldid = ..., keep = TRUE)`: the same lambda
sequence, the same standardisation, the same path stopping rules, the same choice of lambda and the same
per-fold summary statistics, except that p-values are one-sided and bounded by the exact permutation test; on
request also from a nested cross-validation, as PredictDB's GTEx v8 models. The solver is path-wise coordinate
descent on the standardised Gram matrix with sequential strong rules, an active-set column cache and KKT checks.
The Gram matrix is computed once per locus (BLAS); each training fold's standardised Gram column is derived from
it on demand by subtracting the held-out rows. The inner loops are compiled with numba when it is installed
(pure Python otherwise: same results, far slower). See docs/linearization-stats.md for the statistics and where
we differ from PredictDB.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import special, stats
from threadpoolctl import ThreadpoolController

logger = logging.getLogger(__name__)

GLMNET_MIN_LAMBDA_RATIO = 1e-6  # glmnet.control()$eps: smallest allowed lambda.min.ratio
GLMNET_FRACTION_DEVIANCE_STOP = 1e-5  # glmnet.control()$fdev
GLMNET_MAX_DEVIANCE_RATIO = 0.999  # glmnet.control()$devmax
GLMNET_MIN_LAMBDAS_BEFORE_STOP = 5  # glmnet.control()$mnlam
GLMNET_MAX_PASSES = 100_000  # glmnet(maxit = 1e5)
NESTED_OUTER_FOLDS = 5  # PredictDB GTEx v8's n_train_test_folds
NESTED_SEED_STREAM = 1  # nested folds are drawn from default_rng([seed, 1]), apart from the plain CV's folds

_BLAS = ThreadpoolController()

try:  # numba is optional: the kernels below are plain Python that numba compiles when present
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None
    logger.warning("numba is not installed: the elastic net runs as plain Python, orders of magnitude slower")


def _compile(func):
    """Compile a kernel with numba, caching on disk when a cache directory is writable."""
    if numba is None:
        return func
    try:
        return numba.njit(cache=True, nogil=True)(func)
    except RuntimeError as err:  # numba refuses cache=True when no cache location is writable
        logger.debug("numba cache unavailable for %s (%s); compiling in memory", func.__name__, err)
        return numba.njit(cache=False, nogil=True)(func)


@dataclass(frozen=True)
class ElasticNetFit:
    """Cross-validated elastic net of one locus: weights at lambda_min and PredictDB's summary statistics."""

    weights: np.ndarray  # (p,) float64, per dosage unit on the original scale; 0 for unused columns
    intercept: float
    alpha: float
    lambda_min: float  # in units of y, as glmnet reports it
    lambda_index: int  # 0-based index of lambda_min in the path (PredictDB's lambda_iteration is this + 1)
    n_samples: int
    n_columns: int
    n_snps_in_model: int  # non-zero weights
    cv_mse: float
    cv_R2_avg: float
    cv_R2_sd: float
    rho_avg: float
    rho_se: float
    rho_zscore: float
    rho_avg_squared: float
    zscore_pval: float
    cv_fisher_pval: float
    in_sample_R2: float
    # nested cross-validation (PredictDB GTEx v8): NaN unless asked for and the model selected a SNP
    nested_cv_R2_avg: float = math.nan
    nested_cv_R2_sd: float = math.nan
    nested_cv_rho_avg: float = math.nan
    nested_cv_rho_se: float = math.nan
    nested_cv_rho_zscore: float = math.nan
    nested_cv_zscore_pval: float = math.nan
    nested_cv_fisher_pval: float = math.nan
    nested_cv_converged: float = math.nan  # outer folds whose inner model selected a SNP (a count; NaN when not run)


@dataclass(frozen=True)
class _CrossValidation:
    """Everything cv.glmnet computes for one locus, before PredictDB's summaries."""

    lambdas: np.ndarray  # (n_fitted,) in units of y
    cv_mse_path: np.ndarray  # (n_fitted,)
    coefficient_path: np.ndarray  # (n_fitted, p) full-data weights per dosage unit
    intercept_path: np.ndarray  # (n_fitted,)
    prevalidated: np.ndarray  # (n, n_fitted) held-out predictions
    best_index: int


# --------------------------------------------------------------------------------------------- kernels


def _standardized_gram_column(gram, held_rows, sums, scale, n_train, usable, k, out):
    """Column k of the training rows' correlation matrix, from the full Gram minus the held-out rows."""
    p = gram.shape[0]
    for j in range(p):
        out[j] = gram[k, j]
    for i in range(held_rows.shape[0]):
        x_ik = held_rows[i, k]
        if x_ik != 0.0:
            for j in range(p):
                out[j] -= held_rows[i, j] * x_ik
    centre_k = sums[k] / n_train
    denominator_k = n_train * scale[k]
    for j in range(p):
        if usable[j]:
            out[j] = (out[j] - sums[j] * centre_k) / (denominator_k * scale[j])
        else:
            out[j] = 0.0


def _select_working_set(usable, beta, grad, cutoff, work, outside):
    """Non-zero variables plus strong-rule candidates; flags the others as outside. Returns the count."""
    n_work = 0
    for j in range(usable.shape[0]):
        outside[j] = 1.0
        if usable[j] and (beta[j] != 0.0 or abs(grad[j]) > cutoff):
            work[n_work] = j
            n_work += 1
            outside[j] = 0.0
    return n_work


def _fill_compact(work, n_work, n_known, slot, columns, grad, work_grad, work_gram):
    """Contiguous gradient and Gram rows of the working set; rows already filled get their new entries only."""
    for w in range(n_work):
        k = work[w]
        work_grad[w] = grad[k]
        if slot[k] >= 0:
            column = columns[slot[k]]
            for t in range(n_known if w < n_known else 0, n_work):
                work_gram[w, t] = column[work[t]]


def _sweep(work, n_work, beta, work_grad, work_gram, l1, shrink, slot, cached, n_cached, columns, gram,
           held_rows, sums, scale, n_train, usable):
    """One coordinate-descent pass over the working set; returns (largest squared step, n_cached)."""
    dlx = 0.0
    for w in range(n_work):
        k = work[w]
        old = beta[k]
        u = work_grad[w] + old
        v = abs(u) - l1
        new = 0.0
        if v > 0.0:
            new = math.copysign(v, u) / shrink
        if new == old:
            continue
        if slot[k] < 0:  # first time non-zero: its correlation column is needed from now on
            column = columns[n_cached]
            _standardized_gram_column(gram, held_rows, sums, scale, n_train, usable, k, column)
            slot[k] = n_cached
            cached[n_cached] = k
            n_cached += 1
            for t in range(n_work):
                work_gram[w, t] = column[work[t]]
        d = new - old
        beta[k] = new
        dlx = max(dlx, d * d)
        row = work_gram[w]
        for t in range(n_work):
            work_grad[t] -= row[t] * d
    return dlx, n_cached


def _sync_outside(cached, n_cached, beta, synced, columns, outside, grad):
    """Bring the gradient of the variables outside the working set up to date with beta."""
    for q in range(n_cached):
        k = cached[q]
        d = beta[k] - synced[k]
        if d != 0.0:
            column = columns[q]
            for j in range(grad.shape[0]):
                grad[j] -= outside[j] * column[j] * d
            synced[k] = beta[k]


def _add_violators(usable, outside, grad, l1, work, n_work):
    """Append the outside variables that violate the KKT condition |gradient| <= l1; returns the new count."""
    for j in range(usable.shape[0]):
        if outside[j] == 1.0 and usable[j] and abs(grad[j]) > l1:
            work[n_work] = j
            n_work += 1
            outside[j] = 0.0
    return n_work


def _deviance_ratio(cached, n_cached, beta, corr, grad):
    """Fraction of (standardised) deviance explained: 2 b'c - b'Cb = b'(c + gradient)."""
    rsq = 0.0
    for q in range(n_cached):
        k = cached[q]
        rsq += beta[k] * (corr[k] + grad[k])
    return rsq


def _coordinate_descent_path(gram, held_rows, sums, scale, n_train, usable, corr, lambdas, alpha, thresh,
                             max_passes):
    """Standardised elastic-net coefficients along glmnet's path; returns (path, n_fitted, passes or -1).

    lambdas[0] is lambda_max: fitted as all-zero, as glmnet fits its first point at lambda = +infinity.
    The path stops early where glmnet's does (deviance ratio > 0.999 or its relative gain < 1e-5).
    """
    p = corr.shape[0]
    n_lambda = lambdas.shape[0]
    beta = np.zeros(p)
    grad = corr.copy()  # corr - C beta; exact for every variable between passes
    synced = np.zeros(p)  # beta as of the last gradient update of the variables outside the working set
    slot = np.full(p, -1, np.int64)  # row of a variable's cached correlation column; -1 until first non-zero
    cached = np.empty(p, np.int64)
    columns = np.empty((p, p))  # np.empty does not touch memory: only cached rows are ever paid for
    work = np.empty(p, np.int64)
    work_grad = np.empty(p)
    work_gram = np.empty((p, p))
    outside = np.ones(p)
    path = np.zeros((n_lambda, p))
    n_cached, n_fitted, passes, rsq_prev = 0, 1, 0, 0.0
    for m in range(1, n_lambda):
        l1 = alpha * lambdas[m]
        shrink = 1.0 + (1.0 - alpha) * lambdas[m]
        cutoff = alpha * (2.0 * lambdas[m] - lambdas[m - 1])  # sequential strong rule
        n_work = _select_working_set(usable, beta, grad, cutoff, work, outside)
        n_known = 0
        while True:
            _fill_compact(work, n_work, n_known, slot, columns, grad, work_grad, work_gram)
            n_known = n_work
            while True:
                passes += 1
                if passes > max_passes:
                    return path, n_fitted, -1
                dlx, n_cached = _sweep(work, n_work, beta, work_grad, work_gram, l1, shrink, slot, cached,
                                       n_cached, columns, gram, held_rows, sums, scale, n_train, usable)
                if dlx < thresh:
                    break
            for w in range(n_work):
                grad[work[w]] = work_grad[w]
            _sync_outside(cached, n_cached, beta, synced, columns, outside, grad)
            n_before = n_work
            n_work = _add_violators(usable, outside, grad, l1, work, n_work)
            if n_work == n_before:
                break
        for q in range(n_cached):
            path[m, cached[q]] = beta[cached[q]]
        n_fitted = m + 1
        rsq = _deviance_ratio(cached, n_cached, beta, corr, grad)
        if n_fitted >= min(GLMNET_MIN_LAMBDAS_BEFORE_STOP, n_lambda) and (
                rsq > GLMNET_MAX_DEVIANCE_RATIO
                or (rsq != 0.0 and (rsq - rsq_prev) / rsq < GLMNET_FRACTION_DEVIANCE_STOP)):
            break
        rsq_prev = rsq
    return path, n_fitted, passes


_standardized_gram_column = _compile(_standardized_gram_column)
_select_working_set = _compile(_select_working_set)
_fill_compact = _compile(_fill_compact)
_sweep = _compile(_sweep)
_sync_outside = _compile(_sync_outside)
_add_violators = _compile(_add_violators)
_deviance_ratio = _compile(_deviance_ratio)
_coordinate_descent_path = _compile(_coordinate_descent_path)


# --------------------------------------------------------------------------------------------- public API


def assign_folds(n_samples: int, n_folds: int, seed: int) -> np.ndarray:
    """Balanced fold ids 0..n_folds-1 (sizes differ by at most 1), a deterministic shuffle of `seed`."""
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    if n_samples < n_folds:
        raise ValueError(f"{n_samples} samples cannot fill {n_folds} folds")
    return _balanced_folds(n_samples, n_folds, np.random.default_rng(seed))


def _balanced_folds(n_samples: int, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold ids 0..n_folds-1 in balanced numbers, shuffled by `rng`."""
    return rng.permutation(np.arange(n_samples, dtype=np.int64) % n_folds)


def lambda_path(X: np.ndarray, y: np.ndarray, alpha: float, n_lambda: int = 100,
                lambda_min_ratio: float | None = None) -> np.ndarray:
    """glmnet's lambda sequence for (X, y) in units of y, before the path's early stop shortens it."""
    X, y = _checked_data(X, y)
    _check_path_settings(alpha, n_lambda)
    everyone = np.zeros(X.shape[0], dtype=np.int64)
    fold_sums, usable = _column_moments(X, everyone, 1)
    full = _training_set(X, y, np.einsum("ij,ij->j", X, X), fold_sums, usable, everyone, 1, 1)
    ratio = _lambda_min_ratio(lambda_min_ratio, *X.shape)
    return _reported_lambdas(_standardized_lambdas(full.corr, alpha, n_lambda, ratio), full.y_scale)


def fit_elastic_net_cv(X: np.ndarray, y: np.ndarray, *, alpha: float = 0.5, n_folds: int = 10,
                       seed: int = 0, fold_ids: np.ndarray | None = None, n_lambda: int = 100,
                       lambda_min_ratio: float | None = None, tol: float = 1e-7, nested_cv: bool = False,
                       outer_folds: int = NESTED_OUTER_FOLDS) -> ElasticNetFit:
    """cv.glmnet(type.measure = "mse") for one locus and PredictDB's statistics at lambda_min.

    X is (n, p) alt-allele dosages, y the n values to predict. Folds are `assign_folds(n, n_folds, seed)`
    unless `fold_ids` (0-based, every fold non-empty) is given. `tol` is glmnet's `thresh`. With `nested_cv`,
    a locus whose model selected a SNP also gets the nested_cv_* statistics: `outer_folds` outer folds, each
    with an inner `n_folds`-fold CV (folds from `nested_fold_ids(n, outer_folds, n_folds, seed)`). Raises
    ValueError when there is nothing to fit: p == 0, constant y, no varying column, n < n_folds.
    """
    X, y = _checked_data(X, y)
    _check_path_settings(alpha, n_lambda)
    folds, n_folds = _checked_folds(fold_ids, X.shape[0], n_folds, seed)
    if lambda_min_ratio is not None:
        _lambda_min_ratio(lambda_min_ratio, *X.shape)  # validate once, before any fitting
    if nested_cv and not 2 <= outer_folds <= X.shape[0]:
        raise ValueError(f"outer_folds must be between 2 and the {X.shape[0]} samples, got {outer_folds}")
    # One BLAS thread: idle OpenBLAS workers spinning between the many small products slowed fits 3x on
    # 2 cores, and a fixed thread count keeps results bit-identical whatever the machine's core count.
    with _BLAS.limit(limits=1, user_api="blas"):
        cv = _cross_validate(X, y, folds, n_folds, alpha, n_lambda, lambda_min_ratio, tol)
        fit = _summarise(X, y, folds, n_folds, alpha, cv)
        if not nested_cv or fit.n_snps_in_model == 0:  # a locus without a model is never kept: skip the cost
            return fit
        outer, inner = nested_fold_ids(X.shape[0], outer_folds, n_folds, seed)
        return replace(fit, **_nested_performance(X, y, outer, inner, alpha, n_lambda, lambda_min_ratio, tol))


# --------------------------------------------------------------------------------------------- validation


def _checked_data(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X as C-ordered float64 (n, p) and y as float64 (n,), or ValueError."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (samples x variants), got shape {X.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} values")
    if X.shape[1] == 0:
        raise ValueError("no variants in the window (p == 0)")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("X or y contains NaN or infinite values")
    if y.size == 0 or np.ptp(y) == 0.0:
        raise ValueError("y is constant across samples (zero variance)")
    return X, y


def _check_path_settings(alpha: float, n_lambda: int) -> None:
    """Reject an alpha outside (0, 1] or a path shorter than glmnet's lambda reconstruction needs."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if n_lambda < 3:
        raise ValueError(f"n_lambda must be at least 3, got {n_lambda}")


def _checked_folds(fold_ids: np.ndarray | None, n: int, n_folds: int, seed: int) -> tuple[np.ndarray, int]:
    """Fold ids (0-based int64) and their count, built from the seed or validated."""
    if fold_ids is None:
        if n_folds < 3:
            raise ValueError(f"n_folds must be at least 3 (as cv.glmnet requires), got {n_folds}")
        return assign_folds(n, n_folds, seed), n_folds
    folds = np.asarray(fold_ids)
    if folds.shape != (n,) or not np.issubdtype(folds.dtype, np.integer):
        raise ValueError(f"fold_ids must be {n} integers, got shape {folds.shape} dtype {folds.dtype}")
    folds = folds.astype(np.int64)
    k = int(folds.max()) + 1
    if folds.min() < 0 or k < 3 or np.bincount(folds, minlength=k).min() == 0:
        raise ValueError("fold_ids must number folds 0..k-1 (k >= 3, as cv.glmnet requires), none empty")
    return folds, k


def _lambda_min_ratio(lambda_min_ratio: float | None, n: int, p: int) -> float:
    """glmnet's default lambda.min.ratio: 0.01 when n < p, else 1e-4."""
    if lambda_min_ratio is None:
        return 0.01 if n < p else 1e-4
    if not 0.0 < lambda_min_ratio < 1.0:
        raise ValueError(f"lambda_min_ratio must be in (0, 1), got {lambda_min_ratio}")
    return float(lambda_min_ratio)


# --------------------------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class _TrainingSet:
    """Standardisation of one training set (a fold's complement, or everyone) in glmnet's terms."""

    n: int
    sums: np.ndarray  # (p,) column sums over the training rows
    scale: np.ndarray  # (p,) population sd of each column (1 where unusable)
    usable: np.ndarray  # (p,) bool: the column varies within the training rows
    y_mean: float
    y_scale: float  # population sd of y over the training rows
    corr: np.ndarray  # (p,) correlation of each usable column with y (0 where unusable)
    held_rows: np.ndarray  # (n_held, p) rows left out, subtracted from the full Gram


def _column_moments(X: np.ndarray, folds: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-fold column sums, and whether each column varies without each fold (row k: with all rows)."""
    onehot = np.zeros((k, X.shape[0]))
    onehot[folds, np.arange(X.shape[0])] = 1.0
    fold_sums = onehot @ X
    fold_min = np.stack([X[folds == f].min(axis=0) for f in range(k)])
    fold_max = np.stack([X[folds == f].max(axis=0) for f in range(k)])
    usable = np.empty((k + 1, X.shape[1]), dtype=bool)
    for f in range(k if k > 1 else 0):
        others = np.arange(k) != f
        usable[f] = fold_min[others].min(axis=0) < fold_max[others].max(axis=0)
    usable[k] = fold_min.min(axis=0) < fold_max.max(axis=0)
    return fold_sums, usable


def _training_set(X: np.ndarray, y: np.ndarray, squares: np.ndarray, fold_sums: np.ndarray,
                  usable: np.ndarray, folds: np.ndarray, k: int, held: int) -> _TrainingSet:
    """Standardisation of the rows outside fold `held` (held == k: all rows)."""
    train = folds != held
    n_train = int(train.sum())
    held_sums = fold_sums[held] if held < k else 0.0
    sums = fold_sums.sum(axis=0) - held_sums
    held_rows = np.ascontiguousarray(X[~train])
    train_squares = squares - np.einsum("ij,ij->j", held_rows, held_rows)
    variance_numerator = train_squares - sums * sums / n_train
    use = usable[held] & (variance_numerator > 0.0)
    scale = np.where(use, np.sqrt(np.where(use, variance_numerator, 1.0) / n_train), 1.0)
    y_train = y[train]
    y_mean = float(y_train.mean())
    y_centred = y_train - y_mean
    y_scale = float(np.sqrt(np.dot(y_centred, y_centred) / n_train))
    if np.ptp(y_train) == 0.0 or y_scale == 0.0:
        raise ValueError(f"y is constant within the training rows of fold {held}")
    cross = X.T @ np.where(train, y - y_mean, 0.0)  # X'(y - mean) over the training rows, without a copy of X
    corr = np.where(use, cross / (n_train * scale * y_scale), 0.0)
    return _TrainingSet(n_train, sums, scale, use, y_mean, y_scale, corr, held_rows)


def _standardized_lambdas(corr: np.ndarray, alpha: float, n_lambda: int, ratio: float) -> np.ndarray:
    """glmnet's geometric lambda sequence on the standardised scale; entry 0 is lambda_max itself."""
    top = float(np.max(np.abs(corr)))
    if top == 0.0:
        raise ValueError("no column of X varies and correlates with y in a training set: nothing to fit")
    step = max(GLMNET_MIN_LAMBDA_RATIO, ratio) ** (1.0 / (n_lambda - 1.0))
    lambdas = np.empty(n_lambda)
    lambdas[0] = top / max(alpha, 1e-3)
    current = lambdas[0]
    for m in range(1, n_lambda):  # glmnet multiplies step by step; keep its rounding
        current *= step
        lambdas[m] = current
    return lambdas


def _reported_lambdas(standardized: np.ndarray, y_scale: float) -> np.ndarray:
    """Lambdas in units of y as glmnet reports them: the first rebuilt from the next two (R's fix.lam)."""
    lambdas = standardized * y_scale
    if lambdas.size > 2:
        lambdas[0] = math.exp(2.0 * math.log(lambdas[1]) - math.log(lambdas[2]))
    return lambdas


@dataclass(frozen=True)
class _Path:
    """A glmnet path of one training set: lambdas (units of y), weights per dosage unit, intercepts."""

    lambdas: np.ndarray  # (K,)
    weights: np.ndarray  # (K, p)
    intercepts: np.ndarray  # (K,)


def _fit_path(gram: np.ndarray, part: _TrainingSet, alpha: float, n_lambda: int, ratio: float | None,
              tol: float) -> _Path:
    """glmnet(x, y, alpha) on one training set: its own lambda sequence, stopped early as glmnet stops."""
    n_variants = gram.shape[0]
    standardized = _standardized_lambdas(part.corr, alpha, n_lambda, _lambda_min_ratio(ratio, part.n, n_variants))
    path, n_fitted, passes = _coordinate_descent_path(
        gram, part.held_rows, part.sums, part.scale, float(part.n), part.usable, part.corr, standardized,
        float(alpha), float(tol), GLMNET_MAX_PASSES)
    if passes < 0:
        raise ValueError(f"coordinate descent did not converge in {GLMNET_MAX_PASSES} passes")
    weights = path[:n_fitted] * (part.y_scale / part.scale)
    intercepts = part.y_mean - weights @ (part.sums / part.n)
    return _Path(_reported_lambdas(standardized[:n_fitted], part.y_scale), weights, intercepts)


def _path_at(path: _Path, lambdas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights and intercepts at other lambdas: linear in lambda between path points, clamped at its ends."""
    own = path.lambdas
    target = np.clip(lambdas, own[-1], own[0])
    right = np.minimum(np.searchsorted(-own, -target, side="left"), own.size - 1)  # first own <= target
    left = np.maximum(right - 1, 0)
    gap = own[left] - own[right]
    share = np.divide(target - own[right], gap, out=np.zeros_like(target), where=gap > 0.0)
    weights = share[:, None] * path.weights[left] + (1.0 - share)[:, None] * path.weights[right]
    intercepts = share * path.intercepts[left] + (1.0 - share) * path.intercepts[right]
    return weights, intercepts


def _cross_validate(X: np.ndarray, y: np.ndarray, folds: np.ndarray, k: int, alpha: float, n_lambda: int,
                    ratio: float | None, tol: float) -> _CrossValidation:
    """cv.glmnet: the full-data path, every fold's own path evaluated at its lambdas, the CV MSE curve."""
    if not (0.0 < tol < 1.0):
        raise ValueError(f"tol must be in (0, 1), got {tol}")
    gram = np.ascontiguousarray(X.T @ X)
    fold_sums, usable = _column_moments(X, folds, k)
    if not usable[k].any():
        raise ValueError("every variant in the window is constant across samples")
    squares = np.diag(gram).copy()
    full = _fit_path(gram, _training_set(X, y, squares, fold_sums, usable, folds, k, k), alpha, n_lambda, ratio,
                     tol)
    prevalidated = np.empty((X.shape[0], full.lambdas.size))
    fold_mse = np.empty((k, full.lambdas.size))
    for f in range(k):
        part = _training_set(X, y, squares, fold_sums, usable, folds, k, f)
        weights, intercepts = _path_at(_fit_path(gram, part, alpha, n_lambda, ratio, tol), full.lambdas)
        held = folds == f
        predictions = intercepts + part.held_rows @ weights.T
        prevalidated[held] = predictions
        fold_mse[f] = np.mean((y[held, None] - predictions) ** 2, axis=0)
    fold_sizes = np.bincount(folds, minlength=k).astype(np.float64)
    cv_mse_path = (fold_sizes @ fold_mse) / fold_sizes.sum()  # cv.glmnet: fold means, weighted by fold size
    best = int(np.argmin(cv_mse_path))  # first minimum = largest lambda among ties, as glmnet's lambda.min
    logger.debug("cv elastic net: n=%d p=%d, %d lambdas, lambda_min index %d", X.shape[0], X.shape[1],
                 full.lambdas.size, best)
    return _CrossValidation(full.lambdas, cv_mse_path, full.weights, full.intercepts, prevalidated, best)


# --------------------------------------------------------------------------------------------- statistics


def _fold_statistics(y: np.ndarray, predicted: np.ndarray, folds: np.ndarray,
                     k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-fold R2 (TSS around the mean of all y), Pearson r, its one-sided p and Fisher z; p and |z| are bounded by
    the fold's exact permutation test, so both are continuous in r up to |r| = 1 (docs/linearization-stats.md)."""
    r2 = np.empty(k)
    rho = np.empty(k)
    pval = np.empty(k)
    zscore = np.empty(k)
    y_mean = y.mean()
    for f in range(k):
        held = folds == f
        y_f, p_f = y[held], predicted[held]
        n_f = y_f.size
        with np.errstate(divide="ignore", invalid="ignore"):
            r2[f] = 1.0 - np.sum((y_f - p_f) ** 2) / np.sum((y_f - y_mean) ** 2)
            if np.ptp(p_f) == 0.0:  # constant predictions (no SNP selected): PredictDB sets r = 0, p = 1
                rho[f], pval[f] = 0.0, 1.0
                zscore[f] = 0.0 * np.sqrt(n_f - 3.0)  # NaN below 3 individuals, as the Fisher z is
                continue
            dy, dp = y_f - y_f.mean(), p_f - p_f.mean()
            rho[f] = np.clip(np.dot(dy, dp) / np.sqrt(np.dot(dy, dy) * np.dot(dp, dp)), -1.0, 1.0)
            if n_f > 3:
                log_floor = _log_permutation_pvalue_floor(y_f)
                pval[f] = max(_correlation_pvalue_greater(float(rho[f]), n_f), math.exp(log_floor))
                fisher = abs(float(np.arctanh(rho[f]))) * math.sqrt(n_f - 3.0)  # +inf at |r| = 1
                zscore[f] = math.copysign(min(fisher, -float(special.ndtri_exp(log_floor))), rho[f])
            else:  # too few individuals to test: sqrt(n - 3) is 0 (n = 3) or undefined (n < 3)
                pval[f] = 1.0
                zscore[f] = 0.0 if n_f == 3 else math.nan
    return r2, rho, pval, zscore


def _log_permutation_pvalue_floor(y: np.ndarray) -> float:
    """log of the smallest one-sided p the exact permutation test of a correlation with targets `y` can give: of
    the M = n!/prod(ties!) distinct orderings of y, only y itself correlates perfectly (r = +1) with predictions,
    so p >= 1/M whatever the correlation; returns -log M."""
    _, counts = np.unique(y, return_counts=True)
    return -(math.lgamma(y.size + 1) - float(np.sum(special.gammaln(counts + 1.0))))


def _correlation_pvalue_greater(r: float, n: int) -> float:
    """One-sided p of Pearson r against a positive correlation (R's cor.test(alternative = "greater"))."""
    if math.isnan(r):
        return math.nan
    if abs(r) >= 1.0:
        return 0.0 if r > 0 else 1.0
    t = r * math.sqrt(n - 2.0) / math.sqrt(1.0 - r * r)
    return float(stats.t.sf(t, n - 2.0))


def _performance(y: np.ndarray, predicted: np.ndarray, folds: np.ndarray, k: int) -> dict[str, float]:
    """PredictDB's summaries of held-out predictions (mean/sd of R2 and r, Stouffer z), with one-sided p-values:
    a model whose mean fold correlation is not positive gets p >= 0.5 (docs/linearization-stats.md)."""
    r2, rho, pval, zscore = _fold_statistics(y, predicted, folds, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho_zscore = float(np.sum(zscore) / math.sqrt(k))
        fisher = float(-2.0 * np.sum(np.log(pval)))
    rho_avg = float(np.mean(rho))
    zscore_pval = float(stats.norm.sf(rho_zscore))
    fisher_pval = float(stats.chi2.sf(fisher, 2 * k))
    if not rho_avg > 0.0:  # no positive association to test (NaN stays NaN)
        zscore_pval, fisher_pval = max(zscore_pval, 0.5), max(fisher_pval, 0.5)
    return dict(R2_avg=float(np.mean(r2)), R2_sd=float(np.std(r2, ddof=1)), rho_avg=rho_avg,
                rho_se=float(np.std(rho, ddof=1)),  # PredictDB's rho_se is the sd, not sd/sqrt(k)
                rho_zscore=rho_zscore, zscore_pval=zscore_pval, fisher_pval=fisher_pval)


def _summarise(X: np.ndarray, y: np.ndarray, folds: np.ndarray, k: int, alpha: float,
               cv: _CrossValidation) -> ElasticNetFit:
    """PredictDB's model summary at lambda_min; statistics are NaN when no SNP is selected (NA there)."""
    best = cv.best_index
    weights = cv.coefficient_path[best].copy()
    intercept = float(cv.intercept_path[best])
    n_in_model = int(np.count_nonzero(weights))
    nan = float("nan")
    summary = dict(cv_R2_avg=nan, cv_R2_sd=nan, rho_avg=nan, rho_se=nan, rho_zscore=nan,
                   rho_avg_squared=nan, zscore_pval=nan, cv_fisher_pval=nan, in_sample_R2=nan)
    if n_in_model > 0:
        performance = _performance(y, cv.prevalidated[:, best], folds, k)
        fitted = intercept + X @ weights
        summary = dict(
            cv_R2_avg=performance["R2_avg"], cv_R2_sd=performance["R2_sd"], rho_avg=performance["rho_avg"],
            rho_se=performance["rho_se"], rho_zscore=performance["rho_zscore"],
            rho_avg_squared=performance["rho_avg"] ** 2, zscore_pval=performance["zscore_pval"],
            cv_fisher_pval=performance["fisher_pval"],
            in_sample_R2=float(1.0 - np.sum((y - fitted) ** 2) / np.sum((y - y.mean()) ** 2)),
        )
    return ElasticNetFit(
        weights=weights, intercept=intercept, alpha=float(alpha), lambda_min=float(cv.lambdas[best]),
        lambda_index=best, n_samples=int(X.shape[0]), n_columns=int(X.shape[1]),
        n_snps_in_model=n_in_model, cv_mse=float(cv.cv_mse_path[best]), **summary,
    )


def nested_fold_ids(n_samples: int, outer_folds: int, inner_folds: int,
                    seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Balanced outer fold ids of all samples, and per outer fold the inner fold ids of its training samples (in
    their order), drawn from one stream of `seed` distinct from `assign_folds(n, k, seed)`'s."""
    rng = np.random.default_rng([seed, NESTED_SEED_STREAM])
    outer = _balanced_folds(n_samples, outer_folds, rng)
    inner = [_balanced_folds(int(np.count_nonzero(outer != o)), inner_folds, rng) for o in range(outer_folds)]
    return outer, inner


def _nested_performance(X: np.ndarray, y: np.ndarray, outer: np.ndarray, inner: list[np.ndarray], alpha: float,
                        n_lambda: int, ratio: float | None, tol: float) -> dict[str, float]:
    """Nested CV (PredictDB GTEx v8): per outer fold, cv.glmnet on the other folds chooses lambda_min and that
    model predicts the outer fold; the summaries come from the outer folds' predictions."""
    outer_k = len(inner)
    predicted = np.empty(y.size)
    converged = 0
    for o in range(outer_k):
        test = outer == o
        X_train, y_train = np.ascontiguousarray(X[~test]), y[~test]
        inner_k = int(inner[o].max()) + 1
        try:
            if np.bincount(inner[o], minlength=inner_k).min() == 0:
                raise ValueError("an inner fold is empty")
            cv = _cross_validate(X_train, y_train, inner[o], inner_k, alpha, n_lambda, ratio, tol)
        except ValueError as err:  # PredictDB: a fold whose inner fit fails predicts the training mean
            logger.debug("nested cv: outer fold %d not fitted (%s)", o, err)
            predicted[test] = y_train.mean()
            continue
        weights = cv.coefficient_path[cv.best_index]
        converged += int(np.count_nonzero(weights) > 0)
        predicted[test] = cv.intercept_path[cv.best_index] + X[test] @ weights
    performance = _performance(y, predicted, outer, outer_k)
    return {f"nested_cv_{name}": value for name, value in performance.items()} | {
        "nested_cv_converged": float(converged)}
