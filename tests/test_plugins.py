"""Plug-ins: a predictor and a model type from another package (examples/enpact_example_plugins, the worked
example of docs/extending.md) are registered by entry points alone and run end to end in `enpact run`."""

from __future__ import annotations

import json
import sqlite3
import tomllib
from pathlib import Path

import numpy as np
import pytest

from enpact.errors import EnpactError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "enpact_example_plugins"


@pytest.fixture
def example_plugins(tmp_path, monkeypatch) -> Path:
    """The example package importable and its entry points (from its pyproject.toml) installed, as pip would."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    dist = tmp_path / "site" / "enpact_example_plugins-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.syspath_prepend(str(EXAMPLE))
    return EXAMPLE


def test_plugins_are_registered_by_their_entry_points(example_plugins):
    from enpact.models import available_model_types
    from enpact.predictors import available_predictors

    assert {"elastic_net", "cnn", "ridge"} <= set(available_model_types())
    assert {"enformer", "gc_content"} <= set(available_predictors())


def test_without_the_plugin_the_type_is_refused_before_any_step(tmp_path):
    from enpact.params import resolve_params

    with pytest.raises(EnpactError, match=r"parameter 'model_type': unknown model type 'ridge'; available: cnn, "
                                          r"elastic_net"):
        resolve_params(None, {"model_type": "ridge", "outdir": str(tmp_path)})
    with pytest.raises(EnpactError, match=r"parameter 'model_hyperparameters': model type elastic_net has no "
                                          r"hyperparameter channels"):
        resolve_params(None, {"model_hyperparameters": "channels=32", "outdir": str(tmp_path)})


def test_gc_content_predictor_counts_bases_of_the_central_bins(example_plugins):
    from enpact.predictors import load_predictor

    predictor = load_predictor("gc_content", bins=2, bin_bp="4", window_bp=16, aggregate="none")
    window = np.array([[0, 1, 2, 3] * 2 + [1, 1, 2, 2, 4, 0, 0, 3]], dtype=np.uint8)   # A C G T ... N
    features = predictor.predict(window)
    # central 2 bins of 4 bp: bases 4-11 = ACGT | CCGG
    np.testing.assert_allclose(features[0], [[0.25, 0.25, 0.25, 0.25, 0.5], [0.0, 0.5, 0.5, 0.0, 1.0]])
    assert predictor.describe()["options"] == {"bin_bp": 4} and predictor.windows_predicted == 1


def test_a_plugin_predictor_and_model_run_end_to_end(example_plugins, tmp_path):
    """predictor gc_content with its own option, model type ridge with a hyperparameter: trained, personalized
    (the predictor rebuilt from the model's feature spec, option included), linearized and tested."""
    from enpact.params import resolve_params
    from enpact.runner import run_pipeline
    from enpact.store import read_personalized_store

    outdir = tmp_path / "results"
    params = resolve_params(None, {"outdir": str(outdir), "predictor": "gc_content", "predictor_options": "bin_bp=64",
                                   "model_type": "ridge", "model_hyperparameters": "penalty=0.5"})
    run_pipeline(params, progress=False)
    model = json.loads((outdir / "model" / "model.json").read_text())
    assert model["model_type"] == "ridge" and model["hyperparameters"] == {"penalty": 0.5}
    assert model["feature_spec"]["predictor"] == "gc_content"
    assert model["feature_spec"]["options"] == {"bin_bp": 64}
    assert model["feature_spec"]["tracks"] == ["A", "C", "G", "T", "GC"]
    store = read_personalized_store(next((outdir / "personalized").glob("*.h5")), with_features=False)
    assert store.meta["predictor"]["options"] == {"bin_bp": 64}   # personalize rebuilt the same predictor
    with sqlite3.connect(outdir / "linearized" / "enpact_demo.db") as db:
        assert db.execute("SELECT COUNT(*) FROM extra").fetchone()[0] > 0
    assert (outdir / "twas" / "gwas.csv").exists() and (outdir / "report" / "index.html").exists()
