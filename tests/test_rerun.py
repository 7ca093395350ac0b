"""A rerun into an existing output folder gives the results of a fresh run: every step reruns when the content of
one of its inputs or one of its options changes (and only then).

A small study (the demo genome, 40 genes on chr1-chr4, 16 individuals) is run once into one folder; then, one
change at a time (each on top of the previous ones), a parameter of every step and an input file are changed and
the study is rerun into that folder. After each rerun, every database, covariance and TWAS table must be byte for
byte those of a fresh run of the same parameters in a new folder, and the steps that reran must be exactly those
the change concerns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from enpact.cli import main
from enpact.params import demo_params

pytestmark = pytest.mark.slow

RESULTS = ["linearized/study.db", "linearized/study.txt.gz", "linearized/study.summary.tsv", "twas/gwas.csv"]

# (what changes, the step (key prefix in timings.tsv) it is a parameter of, the change, steps that must not rerun)
CHANGES = [
    ("splits", "loci", {"train_chroms": "chr1,chr3", "valid_chroms": "chr2"}, []),
    ("loci_per_chunk", "chunk", {"loci_per_chunk": 15}, ["loci"]),
    ("tracks", "reference/", {"tracks": "0-5"}, ["loci", "chunk"]),
    ("model_folds", "train", {"model_folds": 3}, ["loci", "chunk", "reference/"]),
    ("batch_size", "personalize/", {"batch_size": 7}, ["loci", "chunk"]),
    ("lin_maf", "linearize/", {"lin_maf": 0.05}, ["loci", "chunk", "reference/", "train", "personalize/", "merge/"]),
    ("db_rho_threshold", "database", {"db_rho_threshold": 0.9},
     ["loci", "chunk", "reference/", "train", "personalize/", "merge/", "linearize/"]),
    ("GWAS alleles", "twas/", {"gwas_effect_allele_column": "non_effect_allele",
                              "gwas_non_effect_allele_column": "effect_allele"},
     ["loci", "chunk", "reference/", "train", "personalize/", "merge/", "linearize/", "database"]),
    ("expression file content", "train", {"expression": "changed"}, ["chunk"]),
]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict:
    """Inputs and base parameters of the small study."""
    base = tmp_path_factory.mktemp("rerun_inputs")
    demo = demo_params()
    expression = pd.read_csv(demo["expression"], sep="\t", index_col=0)
    genes = pd.read_csv(Path(demo["expression"]).with_name("genes.tsv"), sep="\t")
    chosen = genes[genes["chrom"].isin(["chr1", "chr2", "chr3", "chr4"])].groupby("chrom").head(10)["gene_id"]
    expression = expression.loc[expression.index.isin(chosen)]
    expression.to_csv(base / "expression.tsv", sep="\t")
    changed = expression.copy()
    changed.iloc[::3] = changed.iloc[::3] * 2.0 + 1.0
    changed.to_csv(base / "expression_changed.tsv", sep="\t")
    (base / "samples.txt").write_text("\n".join(f"IND{i:03d}" for i in range(1, 17)) + "\n")
    params = {**demo, "expression": str(base / "expression.tsv"), "samples": str(base / "samples.txt"),
              "train_chroms": "chr1,chr2", "valid_chroms": "chr3", "test_chroms": "chr4", "loci_per_chunk": 25,
              "lin_folds": 4, "name": "study"}
    return {"dir": base, "params": params}


def run(params: dict, outdir: Path, directory: Path) -> dict[str, str]:
    """`enpact run` into outdir; the status of every step (ran or cached)."""
    path = directory / f"params_{outdir.name}.yaml"
    path.write_text(yaml.safe_dump({**params, "outdir": str(outdir)}))
    assert main(["run", "--params", str(path), "--no-progress"]) == 0
    timings = pd.read_csv(outdir / "pipeline_info" / "timings.tsv", sep="\t")
    return dict(zip(timings["step"], timings["status"]))


def steps_that_ran(statuses: dict[str, str]) -> set[str]:
    """Pipeline steps (not the predictor and total rows) that ran rather than being taken from the cache."""
    return {name for name, status in statuses.items() if status == "ran"} - {
        "predictor (inside reference and personalize)", "total"}


def results(outdir: Path) -> dict[str, bytes]:
    """The bytes of every database, covariance and TWAS table."""
    return {name: (outdir / name).read_bytes() for name in RESULTS}


def test_reruns_after_any_change_equal_fresh_runs(study, tmp_path):
    folder = tmp_path / "rerun"
    params = dict(study["params"])
    run(params, folder, tmp_path)
    previous = results(folder)
    changed_any = []
    for index, (what, step, change, untouched) in enumerate(CHANGES):
        change = {k: (str(study["dir"] / "expression_changed.tsv") if v == "changed" else v) for k, v in change.items()}
        params.update(change)
        statuses = run(params, folder, tmp_path)
        fresh_dir = tmp_path / f"fresh_{index}"
        run(params, fresh_dir, tmp_path)
        rerun, fresh = results(folder), results(fresh_dir)
        stale = [name for name in RESULTS if rerun[name] != fresh[name]]
        assert not stale, f"after changing {what} ({step}), a rerun leaves stale {stale}"
        assert json.loads((folder / "pipeline_info" / "params.json").read_text()) == {
            **json.loads((fresh_dir / "pipeline_info" / "params.json").read_text()), "outdir": str(folder)}
        reran = steps_that_ran(statuses)
        for prefix in untouched:
            assert not [s for s in reran if s.startswith(prefix)], f"changing {what} reran {sorted(reran)}"
        assert [s for s in reran if s.startswith(step)], f"{what}: {step} did not rerun ({sorted(reran)})"
        if rerun != previous:
            changed_any.append(what)
        previous = rerun
    # the test has teeth: these changes alter the results, so stale outputs could not pass for fresh ones (the
    # chunk size must not alter them; the others may or may not in a study this small)
    assert "loci_per_chunk" not in changed_any
    assert set(changed_any) >= {"splits", "tracks", "lin_maf", "db_rho_threshold", "GWAS alleles",
                                "expression file content"}, changed_any


def test_unchanged_rerun_reruns_nothing(study, tmp_path):
    folder = tmp_path / "same"
    run(study["params"], folder, tmp_path)
    before = results(folder)
    statuses = run(study["params"], folder, tmp_path)
    assert steps_that_ran(statuses) == set()
    assert results(folder) == before
