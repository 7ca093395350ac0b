"""Contexts: several training datasets, one EnPACT model each, served by one predictor pass."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO, personalize_planned
from enpact.cli import main
from enpact.contexts import read_context_sheet, study_contexts
from enpact.errors import EnpactError
from enpact.expression import feature_means, read_expression, write_expression
from enpact.genome import Genome
from enpact.loci import CONTEXTS_COLUMN, build_loci, read_loci, union_loci, write_loci
from enpact.models import create_model, load_model
from enpact.models.base import FeatureSpec
from enpact.params import check_input_files, check_param_rules, demo_params, resolve_params
from enpact.personalize import personalize
from enpact.predictors import load_predictor
from enpact.runner import run_pipeline
from enpact.store import read_personalized_store
from enpact.variants import VcfReader

WEIGHTS = str(DEMO / "enformer_tiny")
SAMPLES = [f"IND{i:03d}" for i in range(1, 9)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Two models (blood: the demo means; liver: other targets) and a union of 8 loci, liver using 5 of them."""
    tmp = tmp_path_factory.mktemp("contexts")
    genome = Genome(DEMO / "genome.fa")
    matrix = read_expression(DEMO / "expression.tsv")
    loci, _ = build_loci(DEMO / "genes.tsv", "tsv", matrix.index.tolist(), genome.chroms, train="chr1,chr2,chr3")
    predictor = load_predictor("enformer", weights=WEIGHTS, device="cpu", batch_size=16)
    train = loci.head(50)
    X = predictor.predict(genome.windows(train["chrom"].tolist(), train["center"].to_numpy(), predictor.window_bp))
    targets = feature_means(matrix).reindex(train["locus_id"]).to_numpy()
    for name, y in (("blood", targets), ("liver", -0.5 * targets + 1.0)):
        model = create_model("elastic_net", FeatureSpec.from_dict(predictor.describe()), folds=3, seed=0)
        model.fit(X, y)
        model.save(tmp / name)
    subset = pd.concat([loci[loci["chrom"] == "chr1"].iloc[:4], loci[loci["chrom"] == "chr2"].iloc[:4]])
    blood, liver = subset, subset.iloc[[0, 2, 4, 5, 7]]
    write_loci(blood, tmp / "blood.tsv")
    write_loci(liver, tmp / "liver.tsv")
    assert main(["loci-union", "--loci", str(tmp / "blood.tsv"), str(tmp / "liver.tsv"), "--contexts",
                 "blood,liver", "--out", str(tmp / "union.tsv")]) == 0
    union = read_loci(tmp / "union.tsv")
    write_loci(union.iloc[:4], tmp / "union_a.tsv")
    write_loci(union.iloc[4:], tmp / "union_b.tsv")
    (tmp / "s_a.txt").write_text("\n".join(SAMPLES[:3]) + "\n")
    (tmp / "s_b.txt").write_text("\n".join(SAMPLES[3:]) + "\n")
    return tmp, genome, predictor, union, blood, liver


def test_union_names_the_contexts_that_use_each_locus(setup):
    tmp, _, _, union, blood, liver = setup
    assert sorted(union["locus_id"]) == sorted(blood["locus_id"])
    users = dict(zip(union["locus_id"], union[CONTEXTS_COLUMN]))
    assert {l for l, c in users.items() if c == "blood,liver"} == set(liver["locus_id"])
    assert {l for l, c in users.items() if c == "blood"} == set(blood["locus_id"]) - set(liver["locus_id"])
    moved = liver.assign(center=liver["center"] + 1)
    with pytest.raises(EnpactError, match="at different places in different contexts"):
        union_loci({"blood": blood, "liver": moved})


def test_one_predictor_pass_applies_every_contexts_model(setup):
    tmp, genome, predictor, union, blood, liver = setup
    vcf = lambda: VcfReader(DEMO / "genotypes.vcf.gz", SAMPLES)  # noqa: E731
    models = {"blood": load_model(tmp / "blood"), "liver": load_model(tmp / "liver")}
    both = personalize(genome, union, vcf(), models, predictor, progress=False)
    alone = {name: personalize(genome, table, vcf(), models[name], predictor, progress=False)
             for name, table in (("blood", blood), ("liver", liver))}
    # the predictor ran once per distinct window of the union, not once per context
    assert int(both.n_unique_windows.sum()) == int(alone["blood"].n_unique_windows.sum())
    for name, single in alone.items():
        view = both.for_context(name)
        order = [view.locus_ids.index(l) for l in single.locus_ids]
        assert sorted(view.locus_ids) == sorted(single.locus_ids)
        np.testing.assert_allclose(view.prediction[order], single.prediction, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(view.reference[order], single.reference, rtol=1e-5, atol=1e-6)
        assert view.meta["model"] == single.meta["model"]
    unused = [union["locus_id"].tolist().index(l) for l in set(blood["locus_id"]) - set(liver["locus_id"])]
    assert np.isnan(both.prediction[1, unused]).all() and not np.isnan(both.prediction[0]).any()


def _personalize(tmp, loci, samples, out):
    assert personalize_planned(tmp / out, tmp / loci, [f"blood={tmp / 'blood'}", f"liver={tmp / 'liver'}"],
                               samples_file=tmp / samples, options=["--save-features"]) == 0


def test_context_stores_merge_in_any_order_and_each_context_reads_its_own(setup, capsys):
    tmp = setup[0]
    for loci in ("union_a", "union_b"):
        for samples in ("s_a", "s_b"):
            _personalize(tmp, f"{loci}.tsv", f"{samples}.txt", f"{loci}.{samples}.h5")
    pieces = [str(tmp / f"{l}.{s}.h5") for l in ("union_a", "union_b") for s in ("s_a", "s_b")]
    assert main(["merge", "--inputs", *pieces, "--out", str(tmp / "merged.h5")]) == 0
    assert main(["merge", "--inputs", *reversed(pieces), "--out", str(tmp / "merged2.h5")]) == 0
    assert filecmp.cmp(tmp / "merged.h5", tmp / "merged2.h5", shallow=False)
    merged = read_personalized_store(tmp / "merged.h5")
    assert merged.contexts == ["blood", "liver"] and merged.prediction.shape == (2, 8, len(SAMPLES), 2)
    liver = read_personalized_store(tmp / "merged.h5", context="liver")
    assert len(liver.locus_ids) == 5 and not np.isnan(liver.prediction).any()
    # rescoring one context from the stored features gives what personalize gave for it
    assert main(["rescore", "--personalized", str(tmp / "merged.h5"), "--context", "liver", "--model",
                 str(tmp / "liver"), "--out", str(tmp / "rescored.h5")]) == 0
    rescored = read_personalized_store(tmp / "rescored.h5")
    assert rescored.locus_ids == liver.locus_ids
    np.testing.assert_allclose(rescored.prediction, liver.prediction, rtol=1e-6)
    # a store of several contexts is read for one of them, named
    assert main(["linearize", "--personalized", str(tmp / "merged.h5"), "--vcf", str(DEMO / "genotypes.vcf.gz"),
                 "--loci", str(tmp / "union.tsv"), "--out", str(tmp / "lin.h5"), "--no-progress"]) == 1
    assert "holds contexts blood, liver; name one with --context" in capsys.readouterr().err
    assert main(["accuracy", "--personalized", str(tmp / "merged.h5"), "--expression", str(DEMO / "expression.tsv"),
                 "--context", "kidney", "--outdir", str(tmp / "acc")]) == 1
    assert "no context 'kidney'; it holds blood, liver" in capsys.readouterr().err


def test_context_sheet_is_checked_like_nf_schema_checks_it(tmp_path):
    sheet = tmp_path / "contexts.csv"
    (tmp_path / "a.tsv").write_text("NAME\tIND001\n")
    cases = {
        "context,expression,tissue\nblood,a.tsv,x\n": "unknown column 'tissue'",
        "context,expression\nblood liver,a.tsv\n": "line 2: column 'context': 'blood liver': context names",
        "context,expression\nblood,a.tsv\nblood,a.tsv\n": "line 3: context 'blood' is already on line 2",
        "context,expression\nblood,\n": "'expression' is a required property",
        "context,expression,annotation_format\nblood,a.tsv,vcf\n": "'vcf': one of auto, gtf",
    }
    for text, message in cases.items():
        sheet.write_text(text)
        with pytest.raises(EnpactError, match=message):
            read_context_sheet(sheet)
    sheet.write_text("context,expression,annotation\nblood,a.tsv,\nliver,sub/b.tsv,/abs/genes.gtf\n")
    contexts = study_contexts({"contexts": str(sheet), "annotation": "genes.tsv"})
    # relative paths are relative to the sheet; an empty annotation falls back to the parameter
    assert [(c.name, c.expression, c.annotation) for c in contexts] == [
        ("blood", tmp_path / "a.tsv", Path("genes.tsv")), ("liver", tmp_path / "sub" / "b.tsv", Path("/abs/genes.gtf"))]
    both = {**demo_params(), "contexts": str(sheet)}
    with pytest.raises(EnpactError, match="'contexts' and 'expression' both name training data"):
        check_param_rules(both, "p.yaml")
    missing = {**demo_params("contexts"), "contexts": str(sheet)}
    with pytest.raises(EnpactError, match=r"context liver: expression file not found"):
        check_input_files(missing, "p.yaml")


def test_run_with_two_contexts(tmp_path):
    """The two-context demo: per-context models, databases and S-PrediXcan from one predictor pass, S-MultiXcan;
    the covariance from a reference panel (here the linearization panel itself: the same covariance)."""
    outdir = tmp_path / "results"
    panel = {"covariance_vcf": str(DEMO / "genotypes.vcf.gz")}
    params = resolve_params(None, {"outdir": str(outdir), **panel}, "contexts")
    run_pipeline(params, progress=False)
    assert [c.name for c in study_contexts(params)] == ["blood", "liver"]
    for name, genes in (("blood", 229), ("liver", 167)):
        assert (outdir / "model" / name / "model.json").exists()
        assert len(pd.read_csv(outdir / "twas" / name / "gwas.csv")) == genes
        assert (outdir / "linearized" / f"enpact_demo_{name}.txt.gz").exists()
    summary = json.loads((outdir / "report" / "summary.json").read_text())
    assert summary["contexts"]["blood"]["twas"]["gwas"]["bonferroni_hits"] == 10   # as the one-context demo
    assert summary["contexts"]["liver"]["linearization"]["kept"] == 167
    # one predictor pass: the windows predicted are those of the union's loci, once
    stores = sorted((outdir / "personalized").glob("*.h5"))
    union_windows = sum(int(read_personalized_store(p, False).n_unique_windows.sum()) for p in stores)
    blood_windows = summary["contexts"]["blood"]["personalized"]["windows_predicted"]
    liver_windows = summary["contexts"]["liver"]["personalized"]["windows_predicted"]
    assert union_windows == blood_windows and liver_windows < blood_windows   # liver's loci are a subset
    html = (outdir / "report" / "index.html").read_text()
    assert "<h2>Context blood</h2>" in html and "<h2>Context liver</h2>" in html and "<h2>Contexts</h2>" in html
    assert "<h2>S-MultiXcan: association across the contexts</h2>" in html
    # S-MultiXcan: every gene with a model in a context, its best single-context p-value no larger than any context's
    multi = pd.read_csv(outdir / "multixcan" / "gwas.tsv", sep="\t")
    single = {n: pd.read_csv(outdir / "twas" / n / "gwas.csv").set_index("gene")["pvalue"] for n in ("blood", "liver")}
    assert set(multi["gene"]) == set(single["blood"].index) | set(single["liver"].index)
    best = pd.concat(single.values(), axis=1).min(axis=1).reindex(multi["gene"]).to_numpy()
    np.testing.assert_allclose(multi["p_i_best"].to_numpy(), best, rtol=1e-12)
    assert (multi["n"] == [int(g in single["blood"].index) + int(g in single["liver"].index)
                           for g in multi["gene"]]).all()
    assert summary["multixcan"]["gwas"]["genes"] == len(multi)
    # the reference panel's covariance (covariance_vcf) is what S-PrediXcan read; with the linearization panel as
    # the reference panel it is the database step's covariance
    for name in ("blood", "liver"):
        own = pd.read_csv(outdir / "linearized" / f"enpact_demo_{name}.txt.gz", sep=r"\s+")
        from_panel = pd.read_csv(outdir / "linearized" / f"enpact_demo_{name}.reference_panel.txt.gz", sep=r"\s+")
        assert len(own) == len(from_panel)
        np.testing.assert_allclose(from_panel["VALUE"], own["VALUE"], rtol=1e-6, atol=1e-12)
    # the Nextflow report task has the results but not the sheet: the contexts are the models' folders
    recorded = json.loads((outdir / "pipeline_info" / "params.json").read_text())
    (outdir / "pipeline_info" / "params.json").write_text(json.dumps({**recorded, "contexts": "elsewhere.csv"}))
    (outdir / "report" / "index.html").unlink()
    assert main(["report", "--outdir", str(outdir)]) == 0
    again = (outdir / "report" / "index.html").read_text()
    assert "<h2>Context blood</h2>" in again and "<h2>Context liver</h2>" in again


def test_nextflow_check_task_checks_every_context_from_staged_copies(tmp_path, capsys):
    """ENPACT_CHECK stages the sample sheet and the files it names; `enpact check` maps them by the sheet's order."""
    params = {**demo_params("contexts"), "outdir": "results"}
    (tmp_path / "nextflow_params.json").write_text(json.dumps(params))
    files = ["--fasta", str(DEMO / "genome.fa"), "--annotation", str(DEMO / "genes.gtf"), "--vcf",
             str(DEMO / "genotypes.vcf.gz"), "--gwas", str(DEMO / "gwas.tsv.gz"), "--contexts", str(DEMO / "contexts.csv")]
    staged = [str(DEMO / "expression.tsv"), str(DEMO / "contexts" / "expression_liver.tsv")]
    out = tmp_path / "params.json"
    argv = ["check", "--params", str(tmp_path / "nextflow_params.json"), *files, "--out", str(out)]
    assert main([*argv, "--context-files", *staged]) == 0
    assert json.loads(out.read_text())["contexts"] == str(DEMO / "contexts.csv")
    assert main([*argv, "--context-files", staged[0]]) == 1
    assert "names 2 files, 1 given with --context-files" in capsys.readouterr().err
    # a context whose matrix is normalised per gene is refused with its file named, as `enpact run` refuses it
    scaled = read_expression(DEMO / "contexts" / "expression_liver.tsv")
    scaled = scaled.sub(scaled.mean(axis=1), axis=0).div(scaled.std(axis=1), axis=0)
    write_expression(scaled, tmp_path / "expression_liver.tsv")
    assert main([*argv, "--context-files", staged[0], str(tmp_path / "expression_liver.tsv")]) == 1
    assert "expression_liver.tsv" in capsys.readouterr().err
