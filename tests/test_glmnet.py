"""Tests of the per-locus cross-validated elastic net (enpact.glmnet).

References independent of the code under test: a planted linear truth, pure noise, scipy's Pearson test,
a brute-force count of permutations, and R glmnet itself (cv.glmnet through benchmarks/glmnet_fit.R, which also computes PredictDB's statistics
in R). Without Rscript + glmnet the R tests skip, except where the CI environment variable is set: there
they fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from enpact import glmnet
from enpact.glmnet import ElasticNetFit, assign_folds, fit_elastic_net_cv, lambda_path

ROOT = Path(__file__).resolve().parents[1]
STATISTICS = ("cv_R2_avg", "cv_R2_sd", "rho_avg", "rho_se", "rho_zscore", "zscore_pval", "cv_fisher_pval",
              "in_sample_R2")


def _load_bench():
    """benchmarks/bench_linearize.py as a module (it holds the R runner shared with the benchmark)."""
    spec = importlib.util.spec_from_file_location("bench_linearize", ROOT / "benchmarks" / "bench_linearize.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_linearize", module)  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


@pytest.fixture(scope="module")
def glmnet_ready() -> None:
    """Skip (or fail under CI) when Rscript or the glmnet package is missing."""
    reason = bench.glmnet_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"R glmnet reference unavailable under CI: {reason}")
        pytest.skip(reason)


def ld_dosages(n: int, p: int, rng: np.random.Generator, block: int = 8, founders: int = 4,
               mutation: float = 0.03) -> np.ndarray:
    """Dosages with LD: per block of variants, each haplotype copies one of a few founders, plus noise."""
    X = np.zeros((n, p))
    for start in range(0, p, block):
        width = min(block, p - start)
        founder_alleles = rng.random((founders, width)) < rng.uniform(0.05, 0.5, width)
        for _ in range(2):
            copied = founder_alleles[rng.integers(0, founders, n)]
            X[:, start:start + width] += copied ^ (rng.random((n, width)) < mutation)
    return X


def fit_fields(fit: ElasticNetFit) -> dict:
    """Every field of a fit, arrays as lists, for exact comparison (NaN == NaN)."""
    return {name: (value.tolist() if isinstance(value, np.ndarray) else value)
            for name, value in vars(fit).items()}


# --------------------------------------------------------------------------------------------- folds


def test_assign_folds_is_balanced_deterministic_and_seeded():
    folds = assign_folds(103, 10, seed=7)
    assert folds.shape == (103,) and set(folds.tolist()) == set(range(10))
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 1
    assert np.array_equal(folds, assign_folds(103, 10, seed=7))
    assert not np.array_equal(folds, assign_folds(103, 10, seed=8))
    with pytest.raises(ValueError):
        assign_folds(5, 10, seed=0)


# --------------------------------------------------------------------------------------------- behaviour


def test_planted_sparse_truth_is_recovered():
    rng = np.random.default_rng(11)
    X = ld_dosages(200, 60, rng)
    support, effects = [5, 23, 41], np.array([0.8, -0.5, 0.4])
    y = X[:, support] @ effects + 3.0  # exactly linear, no noise

    fit = fit_elastic_net_cv(X, y, seed=1)

    assert fit.cv_R2_avg > 0.99 and fit.rho_avg > 0.999 and fit.in_sample_R2 > 0.99
    assert fit.zscore_pval < 1e-100 and fit.cv_fisher_pval < 1e-100
    assert set(np.argsort(-np.abs(fit.weights))[:3]) == set(support)
    np.testing.assert_allclose(fit.weights[support], effects, rtol=0.06)  # only the penalty shrinks them
    off_support = np.delete(fit.weights, support)
    assert np.abs(off_support).sum() < 0.05 * np.abs(effects).sum()
    # the model predicts y on the original scale: weights per dosage unit plus the intercept
    np.testing.assert_allclose(fit.intercept + X @ fit.weights, y, atol=0.1 * y.std())

    noisy = fit_elastic_net_cv(X, y + rng.normal(scale=0.05, size=y.size), seed=1)
    assert noisy.rho_avg > 0.99 and set(np.argsort(-np.abs(noisy.weights))[:3]) == set(support)


def test_pure_noise_claims_no_association():
    outcomes = []
    for locus in range(12):
        rng = np.random.default_rng(200 + locus)
        X = ld_dosages(400, 30, rng)
        fit = fit_elastic_net_cv(X, rng.normal(size=400), seed=locus)
        if fit.n_snps_in_model == 0:  # PredictDB writes NA statistics when nothing is selected
            assert all(np.isnan(getattr(fit, name)) for name in STATISTICS)
            assert np.all(fit.weights == 0.0) and np.isfinite(fit.cv_mse)
        else:
            assert abs(fit.rho_avg) < 0.15 and fit.zscore_pval > 0.05
        outcomes.append(fit.n_snps_in_model == 0)
    assert sum(outcomes) >= 8


def test_same_inputs_give_bit_identical_results():
    rng = np.random.default_rng(3)
    X = ld_dosages(150, 80, rng)
    y = X[:, 10] - X[:, 50] + rng.normal(size=150)
    first = fit_elastic_net_cv(X, y, seed=5)
    again = fit_elastic_net_cv(X.copy(), y.copy(), seed=5)
    assert json.dumps(fit_fields(first)) == json.dumps(fit_fields(again))
    same_folds = fit_elastic_net_cv(X, y, fold_ids=assign_folds(150, 10, 5))
    assert json.dumps(fit_fields(first)) == json.dumps(fit_fields(same_folds))
    other_seed = fit_elastic_net_cv(X, y, seed=6)
    assert other_seed.cv_mse != first.cv_mse


def test_constant_columns_get_zero_weight_and_change_nothing_else():
    rng = np.random.default_rng(4)
    X = ld_dosages(120, 25, rng)
    y = X[:, 3] + 0.5 * X[:, 17] + rng.normal(size=120)
    padded = np.insert(X, [0, 10, 25], [2.0, 0.0, 1.0], axis=1)  # constant columns at 0, 11, 27
    constant = [0, 11, 27]

    plain = fit_elastic_net_cv(X, y, seed=2)
    fit = fit_elastic_net_cv(padded, y, seed=2)

    assert fit.n_columns == 28 and np.all(fit.weights[constant] == 0.0)
    np.testing.assert_allclose(np.delete(fit.weights, constant), plain.weights, rtol=1e-12, atol=1e-15)
    for name in ("lambda_min", "cv_mse", "rho_avg", "zscore_pval", "in_sample_R2", "intercept"):
        assert getattr(fit, name) == pytest.approx(getattr(plain, name), rel=1e-12)
    assert fit.lambda_index == plain.lambda_index and fit.n_snps_in_model == plain.n_snps_in_model


@pytest.mark.parametrize("case", ["no_variants", "constant_y", "too_few_samples", "all_columns_constant",
                                  "nan", "two_folds", "empty_fold", "alpha", "short_path"])
def test_unfittable_inputs_raise_value_error(case):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, (40, 5)).astype(float)
    y = rng.normal(size=40)
    calls = {
        "no_variants": lambda: fit_elastic_net_cv(np.empty((40, 0)), y),
        "constant_y": lambda: fit_elastic_net_cv(X, np.full(40, 1.5)),
        "too_few_samples": lambda: fit_elastic_net_cv(X[:8], y[:8], n_folds=10),
        "all_columns_constant": lambda: fit_elastic_net_cv(np.ones((40, 5)), y),
        "nan": lambda: fit_elastic_net_cv(np.where(X == 2, np.nan, X), y),
        "two_folds": lambda: fit_elastic_net_cv(X, y, n_folds=2),
        "empty_fold": lambda: fit_elastic_net_cv(X, y, fold_ids=np.arange(40) % 5 * (np.arange(40) % 5 != 2)),
        "alpha": lambda: fit_elastic_net_cv(X, y, alpha=0.0),
        "short_path": lambda: fit_elastic_net_cv(X, y, n_lambda=2),
    }
    with pytest.raises(ValueError):
        calls[case]()


def test_fold_statistics_match_scipy_and_predictdb_rules_for_constant_predictions():
    rng = np.random.default_rng(9)
    folds = np.repeat(np.arange(4), 15)
    y = rng.normal(size=60)
    predicted = 0.5 * y + rng.normal(size=60)
    predicted[folds == 2] = 0.25  # a fold whose model selected nothing: constant predictions

    r2, rho, pval, zscore = glmnet._fold_statistics(y, predicted, folds, 4)

    for f in (0, 1, 3):
        held = folds == f
        reference = stats.pearsonr(y[held], predicted[held], alternative="greater")  # one-sided: r > 0
        assert rho[f] == pytest.approx(reference.statistic, rel=1e-12)
        assert pval[f] == pytest.approx(reference.pvalue, rel=1e-9)
        assert zscore[f] == pytest.approx(np.arctanh(reference.statistic) * np.sqrt(15 - 3), rel=1e-12)
        residual = np.sum((y[held] - predicted[held]) ** 2)
        assert r2[f] == pytest.approx(1 - residual / np.sum((y[held] - y.mean()) ** 2), rel=1e-12)
    assert (rho[2], pval[2], zscore[2]) == (0.0, 1.0, 0.0)


# --------------------------------------------------------------------------------------------- R glmnet


def _glmnet_problems() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Three seeded problems: n > p, p > n, and one with constant and fold-constant (rare) columns."""
    problems = []
    rng = np.random.default_rng(21)
    X = ld_dosages(150, 40, rng)
    problems.append(("n_gt_p", X, X[:, [3, 20]] @ [0.6, -0.4] + rng.normal(size=150), assign_folds(150, 10, 1)))
    rng = np.random.default_rng(22)
    X = ld_dosages(60, 150, rng)
    problems.append(("p_gt_n", X, X[:, [7, 70, 120]] @ [1.0, 1.0, -0.8] + rng.normal(size=60),
                     assign_folds(60, 10, 2)))
    rng = np.random.default_rng(23)
    X = ld_dosages(100, 30, rng)
    folds = assign_folds(100, 10, 3)
    X[:, 4] = 1.0  # constant everywhere
    X[:, 9] = 0.0
    X[np.flatnonzero(folds == 6)[:2], 9] = 1.0  # varies only through fold 6: constant in its training set
    problems.append(("rare_columns", X, X[:, 9] + X[:, 12] + rng.normal(size=100), folds))
    return problems


@pytest.fixture(scope="module")
def glmnet_exact(glmnet_ready, tmp_path_factory):
    """cv.glmnet run to a tight threshold (1e-20) on the three problems, and our fits at the same one."""
    problems = _glmnet_problems()
    jobs = [bench.GlmnetJob(name, X, y, folds, thresh=1e-20) for name, X, y, folds in problems]
    reference = bench.run_glmnet(jobs, tmp_path_factory.mktemp("glmnet"))
    ours = {name: (X, y, folds, glmnet._cross_validate(X, y, folds, 10, 0.5, 100, None, 1e-20))
            for name, X, y, folds in problems}
    return ours, reference


@pytest.mark.parametrize("name", ["n_gt_p", "p_gt_n", "rare_columns"])
def test_path_and_cv_curve_agree_with_glmnet(glmnet_exact, name):
    ours, reference = glmnet_exact
    X, y, folds, cv = ours[name]
    ref = reference[name]

    np.testing.assert_allclose(cv.lambdas, ref["lambda"], rtol=1e-12)  # same length: same early stop
    np.testing.assert_allclose(lambda_path(X, y, 0.5)[:cv.lambdas.size], ref["lambda"], rtol=1e-12)
    np.testing.assert_allclose(cv.cv_mse_path, ref["cvm"], rtol=1e-5)
    assert cv.best_index == int(ref["index_min"][0]) - 1
    path = ref["beta_path"].reshape(ref["lambda"].size, X.shape[1])
    scale = np.abs(path).max()
    np.testing.assert_allclose(cv.coefficient_path, path, atol=1e-6 * scale)
    np.testing.assert_array_equal(np.count_nonzero(cv.coefficient_path, axis=1), ref["nzero"])
    np.testing.assert_allclose(cv.prevalidated[:, cv.best_index], ref["preval_min"], atol=1e-6 * y.std())


def bounded_fold_statistics(y: np.ndarray, predicted: np.ndarray, folds: np.ndarray) -> dict:
    """The documented rule, written out with scipy: per fold the one-sided Pearson p, at least 1/M (M distinct
    orderings of the fold's targets), and the Fisher z, at most the normal quantile of 1/M in size; Stouffer's z,
    its one-sided p and Fisher's combination. `capped`: whether any fold reached its bound."""
    import collections
    from math import factorial, prod

    k = int(folds.max()) + 1
    zscores, pvalues, rhos, capped = [], [], [], False
    for f in range(k):
        obs, fit = y[folds == f], predicted[folds == f]
        test = stats.pearsonr(obs, fit, alternative="greater")
        floor = 1 / (factorial(obs.size) / prod(factorial(c) for c in collections.Counter(obs.tolist()).values()))
        fisher, bound = np.arctanh(test.statistic) * np.sqrt(obs.size - 3), stats.norm.isf(floor)
        capped |= abs(fisher) > bound or test.pvalue < floor
        zscores.append(np.sign(fisher) * min(abs(fisher), bound))
        pvalues.append(max(test.pvalue, floor))
        rhos.append(test.statistic)
    stouffer = np.sum(zscores) / np.sqrt(k)
    floor_if_negative = 0.5 if np.mean(rhos) <= 0 else 0.0
    return {"rho_zscore": stouffer, "zscore_pval": max(stats.norm.sf(stouffer), floor_if_negative),
            "cv_fisher_pval": max(stats.chi2.sf(-2 * np.sum(np.log(pvalues)), 2 * k), floor_if_negative),
            "capped": capped}


@pytest.mark.parametrize("name", ["n_gt_p", "p_gt_n", "rare_columns"])
def test_predictdb_statistics_agree_with_r(glmnet_exact, name):
    ours, reference = glmnet_exact
    X, y, folds, cv = ours[name]
    ref = reference[name]
    fit = glmnet._summarise(X, y, folds, 10, 0.5, cv)
    bounded = bounded_fold_statistics(y, ref["preval_min"], folds)  # R's predictions, our documented rule
    if not bounded["capped"]:  # no fold reaches its permutation bound: R's (PredictDB's) z itself, read one-sidedly
        assert bounded["rho_zscore"] == pytest.approx(ref["rho_zscore"][0], rel=1e-12)
        assert bounded["zscore_pval"] == pytest.approx(bench.one_sided_zscore_pval(ref), rel=1e-9)

    assert fit.lambda_min == pytest.approx(ref["lambda_min"][0], rel=1e-12)
    assert set(np.flatnonzero(fit.weights)) == set(np.flatnonzero(ref["beta_min"]))
    np.testing.assert_allclose(fit.weights, ref["beta_min"], atol=1e-6 * np.abs(ref["beta_min"]).max())
    assert fit.intercept == pytest.approx(ref["a0_min"][0], abs=1e-6 * abs(y).max())
    assert fit.n_snps_in_model > 0
    for statistic in STATISTICS:
        expected = bounded.get(statistic, ref[statistic][0])
        assert getattr(fit, statistic) == pytest.approx(expected, rel=1e-5, abs=1e-7), statistic
    assert fit.rho_avg_squared == pytest.approx(ref["rho_avg"][0] ** 2, rel=1e-5)


def test_default_settings_agree_with_glmnet_defaults(glmnet_ready, tmp_path):
    """At PredictDB's own settings (thresh 1e-7) both are approximate; statistics still agree closely."""
    rng = np.random.default_rng(31)
    X = ld_dosages(300, 120, rng)
    y = X[:, [10, 60, 100]] @ [0.3, -0.3, 0.2] + rng.normal(size=300)
    folds = assign_folds(300, 10, 4)
    ref = bench.run_glmnet([bench.GlmnetJob("default", X, y, folds)], tmp_path)["default"]
    fit = fit_elastic_net_cv(X, y, fold_ids=folds)

    assert fit.lambda_index == int(ref["index_min"][0]) - 1
    assert bench.jaccard(fit.weights, ref["beta_min"]) == 1.0
    assert abs(fit.rho_avg - ref["rho_avg"][0]) < 2e-3
    assert bench.log10_gap(fit.zscore_pval, bench.one_sided_zscore_pval(ref)) < 0.05
    assert fit.cv_mse == pytest.approx(ref["cvm"][fit.lambda_index], rel=2e-3)


# --------------------------------------------------------------------------------------------- compilation


_TINY_FIT = (
    "import json, numpy as np, {module} as en\n"
    "r = np.random.default_rng(0); X = r.integers(0, 3, (40, 5)).astype(float)\n"
    "f = en.fit_elastic_net_cv(X, X[:, 1] - X[:, 4] + r.normal(size=40), n_folds=4, n_lambda=30)\n"
    "print(json.dumps([f.weights.tolist(), f.rho_avg, f.cv_mse, f.lambda_index]))\n"
)


def _tiny_fit_here() -> list:
    """The tiny locus of _TINY_FIT fitted in this process."""
    namespace = {}
    exec(_TINY_FIT.format(module="enpact.glmnet").replace("print(", "result = ("), namespace)
    return json.loads(namespace["result"])


def _run_tiny_fit(module: str, env: dict, pythonpath: str) -> list:
    """Fit the tiny locus in a fresh interpreter and return its key results."""
    env = dict(os.environ, **env, PYTHONPATH=pythonpath)
    done = subprocess.run([sys.executable, "-c", _TINY_FIT.format(module=module)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_works_when_no_numba_cache_directory_is_writable(tmp_path):
    pytest.importorskip("numba")
    shutil.copy(ROOT / "src" / "enpact" / "glmnet.py", tmp_path / "standalone_glmnet.py")
    (tmp_path / "__pycache__").write_text("")  # a file where numba would create its in-tree cache folder
    blocked = {"NUMBA_CACHE_DIR": "/dev/null/numba", "HOME": "/dev/null", "XDG_CACHE_HOME": "/dev/null/cache"}
    assert _run_tiny_fit("standalone_glmnet", blocked, str(tmp_path)) == _tiny_fit_here()


def test_pure_python_kernels_match_compiled_ones():
    pytest.importorskip("numba")
    compiled = _tiny_fit_here()
    interpreted = _run_tiny_fit("enpact.glmnet", {"NUMBA_DISABLE_JIT": "1"}, str(ROOT / "src"))
    np.testing.assert_allclose(interpreted[0], compiled[0], rtol=1e-12, atol=1e-15)
    assert interpreted[1:] == pytest.approx(compiled[1:], rel=1e-12)


@pytest.mark.parametrize("targets", [[1.0, 1.0, 2.0, 3.0, 4.0], [0.3, 1.2, 2.0, 2.5, 4.1, 5.0], [1.0, 1.0, 1.0, 2.0, 2.0]])
def test_a_perfectly_correlated_fold_gets_the_exact_permutation_bound(targets):
    """r = 1 in a fold: p is the exact one-sided permutation p (counted by brute force here), z its normal quantile."""
    import itertools

    y_fold = np.array(targets)
    predictor = y_fold * 2.0 + 1.0
    orderings = set(itertools.permutations(y_fold.tolist()))
    perfect = sum(np.corrcoef(np.array(o), predictor)[0, 1] > 1 - 1e-12 for o in orderings)
    exact_p = perfect / len(orderings)
    rng = np.random.default_rng(0)
    other = rng.normal(size=8)
    y = np.concatenate([y_fold, other])
    predicted = np.concatenate([predictor, other + rng.normal(scale=0.5, size=8)])
    folds = np.array([0] * len(y_fold) + [1] * 8)
    _, rho, pval, zscore = glmnet._fold_statistics(y, predicted, folds, 2)
    assert rho[0] == 1.0 and pval[0] == pytest.approx(exact_p, rel=1e-12)
    assert np.isfinite(zscore[0]) and zscore[0] == pytest.approx(stats.norm.isf(exact_p))
    assert zscore[1] == pytest.approx(np.arctanh(rho[1]) * np.sqrt(8 - 3))   # other folds as before


def summary_of(y: np.ndarray, predicted: np.ndarray, folds: np.ndarray) -> ElasticNetFit:
    """The model summary of given held-out predictions (a one-SNP model, so that statistics are computed)."""
    cv = glmnet._CrossValidation(lambdas=np.ones(1), cv_mse_path=np.ones(1), coefficient_path=np.ones((1, 1)),
                                 intercept_path=np.zeros(1), prevalidated=predicted[:, None], best_index=0)
    return glmnet._summarise(np.zeros((y.size, 1)), y, folds, int(folds.max()) + 1, 0.5, cv)


def orthogonal_direction(target: np.ndarray) -> np.ndarray:
    """A unit vector orthogonal to constants and to `target` (uncorrelated with it)."""
    centred = target - target.mean()
    direction = np.sin(np.arange(target.size) * 2.0)
    direction -= direction.mean() + centred * (centred @ direction) / (centred @ centred)
    return direction / np.linalg.norm(direction)


def nudged(target: np.ndarray, size: float) -> np.ndarray:
    """`target` plus `size` times a direction uncorrelated with it: r with target is 1 - O(size^2)."""
    return target + size * orthogonal_direction(target)


def with_correlation(target: np.ndarray, r: float) -> np.ndarray:
    """A vector whose Pearson correlation with `target` is `r`."""
    centred = target - target.mean()
    return r * centred / np.linalg.norm(centred) + np.sqrt(1 - r * r) * orthogonal_direction(target)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_fold_statistics_are_continuous_up_to_a_perfect_correlation(sign):
    """Issue 25: a fold at r = 1 exactly got a permutation z (~4), one at 1 - 1e-15 a Fisher z of ~40."""
    rng = np.random.default_rng(12)
    y_fold = np.array([0.3, 1.2, 2.0, 2.0, 4.1, 5.0, 5.5, 7.0])  # 8 individuals, one tie: M = 8!/2! orderings
    others = rng.normal(size=24)
    y = np.concatenate([y_fold, others])
    folds = np.repeat(np.arange(4), 8)
    base = np.concatenate([np.zeros(8), others + rng.normal(size=24)])

    def fold_zero(predictions):
        """r, p and z of fold 0, and the model summary, when fold 0 is predicted by `predictions`."""
        predicted = base.copy()
        predicted[:8] = predictions
        _, rho, pval, zscore = glmnet._fold_statistics(y, predicted, folds, 4)
        return rho[0], pval[0], zscore[0], summary_of(y, predicted, folds)

    exact = fold_zero(sign * y_fold)
    assert exact[0] == sign  # exactly +-1
    sizes = [3e-1, 1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4, 1e-5, 1e-6, 3e-7]
    sweep = [fold_zero(nudged(sign * y_fold, size)) for size in sizes]
    assert 0 < 1 - sign * sweep[-1][0] < 1e-14  # the last one is within 1e-14 of a perfect correlation
    zscores = sign * np.array([z for _, _, z, _ in sweep] + [exact[2]])
    assert np.all(np.diff(zscores) >= 0)  # |z| grows with |r| ...
    assert sweep[-1][2] == pytest.approx(exact[2], rel=1e-12)  # ... up to the value at |r| = 1, without a jump
    assert sweep[-1][1] == pytest.approx(exact[1], rel=1e-12)
    log_orderings = np.log(40320 / 2)  # 8! / 2!
    assert exact[2] == pytest.approx(sign * stats.norm.isf(np.exp(-log_orderings)), rel=1e-9)
    assert exact[1] == pytest.approx(np.exp(-log_orderings) if sign > 0 else 1.0, rel=1e-9)
    for statistic in ("rho_zscore", "zscore_pval", "cv_fisher_pval"):  # and the model's summaries follow
        assert getattr(sweep[-1][3], statistic) == pytest.approx(getattr(exact[3], statistic), rel=1e-9)


def test_a_negative_correlation_never_looks_significant():
    """Issue 25: a gene with rho_avg -0.25 (demo ENSGDEMO00018.3) got zscore_pval 1.5e-32 from folds at r = -1."""
    rng = np.random.default_rng(25)
    folds = np.repeat(np.arange(10), 8)
    y = rng.normal(size=80)
    predicted = rng.normal(size=80) + 0.3 * y
    for f in range(4):  # four folds anti-correlated perfectly, or to within rounding
        held = folds == f
        predicted[held] = -y[held] if f % 2 else nudged(-y[held], 1e-7)
    cases = {"perfectly_anticorrelated_folds": predicted}
    for trial in range(40):  # anti-correlated predictions of every strength
        cases[f"negative_{trial}"] = -rng.uniform(0.0, 3.0) * y + rng.normal(size=80)
    mixed = np.concatenate([y[:8]] + [with_correlation(y[folds == f], -0.15) for f in range(1, 10)])
    cases["mean_negative_but_one_strong_fold"] = mixed  # r = 1, then -0.15 nine times: rho_avg < 0 but Z > 0

    for name, case in cases.items():
        fit = summary_of(y, case, folds)
        if fit.rho_avg <= 0:
            assert fit.zscore_pval >= 0.5 and fit.cv_fisher_pval >= 0.5, (name, fit.rho_avg, fit.zscore_pval)
    strong = summary_of(y, cases["perfectly_anticorrelated_folds"], folds)
    assert strong.rho_avg < -0.15 and strong.zscore_pval >= 0.5
    assert summary_of(y, cases["mean_negative_but_one_strong_fold"], folds).rho_zscore > 0
    mirrored = summary_of(-y, cases["perfectly_anticorrelated_folds"], folds)  # the same fit of -y: r > 0
    assert mirrored.rho_avg == pytest.approx(-strong.rho_avg) and mirrored.zscore_pval < 1e-3


# --------------------------------------------------------------------------------------------- nested CV


def test_nested_cv_is_not_optimistic_on_pure_noise():
    """y is noise (true predictive correlation 0): the CV that chose lambda reports a positive rho_avg for the loci
    that got a model; nested CV, where lambda is chosen without the held-out fold, is close to the truth."""
    plain, nested = [], []
    for locus in range(60):
        rng = np.random.default_rng(500 + locus)
        X = ld_dosages(200, 30, rng)
        fit = fit_elastic_net_cv(X, rng.normal(size=200), seed=locus, nested_cv=True)
        if fit.n_snps_in_model == 0:  # no model: no statistics, nested or not
            assert np.isnan(fit.nested_cv_rho_avg) and np.isnan(fit.nested_cv_converged)
            continue
        assert 0 <= fit.nested_cv_converged <= 5 and fit.nested_cv_zscore_pval > 0
        plain.append(fit.rho_avg)
        nested.append(fit.nested_cv_rho_avg)
    plain, nested = np.array(plain), np.array(nested)
    assert len(plain) >= 15
    standard_error = plain.std(ddof=1) / np.sqrt(len(plain))
    assert plain.mean() > 0.08 and plain.mean() > 5 * standard_error  # biased upward (measured 0.127 +- 0.012)
    assert abs(nested.mean()) < 0.05  # measured 0.026 +- 0.011
    assert plain.mean() - nested.mean() > 0.06  # measured 0.10


def test_nested_cv_is_off_by_default_and_leaves_the_plain_statistics_alone():
    rng = np.random.default_rng(8)
    X = ld_dosages(120, 20, rng)
    y = X[:, 4] - X[:, 11] + rng.normal(size=120)
    plain = fit_elastic_net_cv(X, y, seed=3)
    nested = fit_elastic_net_cv(X, y, seed=3, nested_cv=True)
    nested_fields = [name for name in fit_fields(plain) if name.startswith("nested_cv_")]
    assert len(nested_fields) == 8 and all(np.isnan(getattr(plain, name)) for name in nested_fields)
    assert all(np.isfinite(getattr(nested, name)) for name in nested_fields)
    assert {k: v for k, v in fit_fields(nested).items() if k not in nested_fields} == {
        k: v for k, v in fit_fields(plain).items() if k not in nested_fields}
    assert json.dumps(fit_fields(nested)) == json.dumps(fit_fields(fit_elastic_net_cv(X, y, seed=3, nested_cv=True)))
    with pytest.raises(ValueError):
        fit_elastic_net_cv(X, y, nested_cv=True, outer_folds=1)


def test_nested_cv_agrees_with_glmnet_fitted_on_each_outer_training_set(glmnet_ready, tmp_path):
    """Each outer fold: R's cv.glmnet on the other folds (same inner fold ids) predicts it at lambda.min; the
    nested statistics, computed here with scipy from those predictions, are ours."""
    rng = np.random.default_rng(41)
    X = ld_dosages(150, 40, rng)
    y = X[:, [3, 20, 33]] @ [0.5, -0.4, 0.3] + rng.normal(size=150)
    outer, inner = glmnet.nested_fold_ids(150, 5, 10, seed=9)
    assert sorted(np.bincount(outer).tolist()) == [30] * 5 and all(np.bincount(i).min() == 12 for i in inner)
    jobs = [bench.GlmnetJob(f"outer{o}", X[outer != o], y[outer != o], inner[o], thresh=1e-20) for o in range(5)]
    reference = bench.run_glmnet(jobs, tmp_path)
    predicted = np.empty(150)
    for o in range(5):
        predicted[outer == o] = reference[f"outer{o}"]["a0_min"][0] + X[outer == o] @ reference[f"outer{o}"]["beta_min"]
    r2 = [1 - np.sum((y[outer == o] - predicted[outer == o]) ** 2) / np.sum((y[outer == o] - y.mean()) ** 2)
          for o in range(5)]
    tests = [stats.pearsonr(y[outer == o], predicted[outer == o], alternative="greater") for o in range(5)]
    rho = np.array([t.statistic for t in tests])
    stouffer = np.sum(np.arctanh(rho) * np.sqrt(30 - 3)) / np.sqrt(5)

    fit = fit_elastic_net_cv(X, y, seed=9, tol=1e-20, nested_cv=True)

    assert fit.nested_cv_converged == sum(np.count_nonzero(r["beta_min"]) > 0 for r in reference.values()) == 5
    assert fit.nested_cv_rho_avg == pytest.approx(rho.mean(), rel=1e-5)
    assert fit.nested_cv_rho_se == pytest.approx(rho.std(ddof=1), rel=1e-4)
    assert fit.nested_cv_R2_avg == pytest.approx(np.mean(r2), rel=1e-5)
    assert fit.nested_cv_rho_zscore == pytest.approx(stouffer, rel=1e-5)
    assert fit.nested_cv_zscore_pval == pytest.approx(stats.norm.sf(stouffer), rel=1e-4)
    fisher = stats.chi2.sf(-2 * np.sum(np.log([t.pvalue for t in tests])), 10)
    assert fit.nested_cv_fisher_pval == pytest.approx(fisher, rel=1e-4)
    assert fit.nested_cv_rho_avg < fit.in_sample_R2 ** 0.5  # held-out, not in-sample
