"""Inputs are checked before the first predictor step (enpact.checks), by `enpact run` and by `enpact check` (the
Nextflow pipeline's first task) with the same code: each broken input stops the run with one line naming the
file, the parameter and what to do, and nothing is written. Also: runs that would give no result fail with the
reason (or go on when allow_empty_results says so), step errors name parameters, nothing is dropped silently."""

from __future__ import annotations

import gzip
import logging
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
import yaml

from enpact.checks import param_names
from enpact.cli import main
from enpact.params import demo_dir, demo_params

DEMO = demo_dir()


def params_file(tmp_path: Path, **changes) -> Path:
    """A parameter file: the demo's parameters with changes (None removes a parameter)."""
    params = {**demo_params(), "outdir": str(tmp_path / "results"), **changes}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in params.items() if v is not None}))
    return path


def refused(tmp_path: Path, capsys, **changes) -> str:
    """`enpact run` and `enpact check` (with the input files, as Nextflow runs it) both refuse the study with the
    same single line, before writing anything; that line."""
    path = params_file(tmp_path, **changes)
    capsys.readouterr()
    assert main(["-q", "run", "--params", str(path)]) == 1
    ran = [line for line in capsys.readouterr().err.splitlines() if " error: " in line]   # warnings may precede
    assert len(ran) == 1 and ran[0].startswith("enpact run: error: "), ran
    assert not (tmp_path / "results").exists()
    params = {**demo_params(), **changes}
    flags = {"fasta": "--fasta", "annotation": "--annotation", "expression": "--expression", "vcf": "--vcf",
             "samples": "--samples-file"}
    argv = ["-q", "check", "--params", str(path), "--out", str(tmp_path / "params.json")]
    for name, flag in flags.items():
        if params.get(name):
            argv += [flag, str(params[name])]
    if params.get("gwas"):
        argv += ["--gwas", *str(params["gwas"]).split(",")]
    assert main(argv) == 1
    checked = [line for line in capsys.readouterr().err.splitlines() if " error: " in line]
    assert len(checked) == 1 and not (tmp_path / "params.json").exists(), checked
    # the same words; the source is the parameter file for `enpact run`, the run's parameters for `enpact check`
    assert checked[0].removeprefix("enpact check: error: ").removeprefix("pipeline parameters: ") == \
        ran[0].removeprefix("enpact run: error: ").removeprefix(f"{path}: ")
    return ran[0]


def test_wrong_genome_build(tmp_path, capsys):
    line = refused(tmp_path, capsys, vcf=str(DEMO / "broken" / "ref_mismatch.vcf.gz"))
    assert "ref_mismatch.vcf.gz" in line and "REF" in line and "build" in line


def test_unphased_genotypes_and_the_parameter_that_allows_them(tmp_path, capsys):
    line = refused(tmp_path, capsys, vcf=str(DEMO / "broken" / "unphased.vcf.gz"))
    assert "unphased genotype" in line and "allow_unphased: true" in line and "--allow-unphased" not in line
    from enpact.checks import check_study
    from enpact.params import complete_params, load_schema

    params = complete_params({**demo_params(), "vcf": str(DEMO / "broken" / "unphased.vcf.gz"),
                              "allow_unphased": True, "lin_folds": 10}, load_schema(), "test")
    assert len(check_study(params)) == 240   # the advice works: the same study passes the checks


def test_sample_missing_from_the_vcf(tmp_path, capsys):
    samples = tmp_path / "ids.txt"
    samples.write_text("IND001\nIND999\n")
    line = refused(tmp_path, capsys, samples=str(samples))
    assert "IND999" in line and "not in the VCF" in line


def test_too_few_individuals_for_the_folds(tmp_path, capsys):
    samples = tmp_path / "ids.txt"
    samples.write_text("\n".join(f"IND{i:03d}" for i in range(1, 6)) + "\n")
    line = refused(tmp_path, capsys, samples=str(samples))
    assert "5 individuals are too few for 10 cross-validation folds (lin_folds)" in line


@pytest.mark.parametrize("changes, message", [
    ({"test_chroms": "chr66"}, "parameter 'test_chroms': no locus is on 'chr66'"),
    ({"valid_chroms": "chrM"}, "parameter 'valid_chroms': no locus is on 'chrM'"),
])
def test_splits_that_name_chromosomes_without_loci(changes, message, tmp_path, capsys):
    assert message in refused(tmp_path, capsys, **changes)


def test_predictor_window_longer_than_the_chromosomes(tmp_path, capsys):
    line = refused(tmp_path, capsys, window_bp=400_000)
    assert "chr1 is 300,000 bp, shorter than the predictor window (400,000 bp)" in line


def gwas_variant(tmp_path: Path, name: str, transform) -> Path:
    """A copy of the demo GWAS with its table transformed."""
    table = pd.read_csv(DEMO / "gwas.tsv.gz", sep="\t")
    path = tmp_path / name
    transform(table).to_csv(path, sep="\t", index=False)
    return path


def test_gwas_ids_that_cannot_match_the_snp_key(tmp_path, capsys):
    line = refused(tmp_path, capsys, gwas_snp_column="rsid")
    assert "holds rsids" in line and "snp_key is varID" in line and "snp_key: rsid" in line
    line = refused(tmp_path, capsys, snp_key="rsid", gwas_keep_non_rsid=False)
    assert "does not hold rsids" in line and "snp_key is rsid" in line


def test_gwas_chromosome_names_unlike_the_fasta(tmp_path, capsys):
    gwas = gwas_variant(tmp_path, "nochr.tsv", lambda t: t.assign(variant_id=t["variant_id"].str.removeprefix("chr")))
    line = refused(tmp_path, capsys, gwas=str(gwas))
    assert "name chromosomes like '1'" in line and "like GTEx v8 (chr1_12345_A_G_b38)" in line


def test_gwas_without_a_z_score_in_the_configured_columns(tmp_path, capsys):
    line = refused(tmp_path, capsys, gwas_zscore_column="", gwas_pvalue_column="", gwas_se_column="")
    assert "gwas_zscore_column" in line and "--zscore-column" not in line


def test_gwas_described_by_beta_and_se_only(tmp_path):
    """An empty string switches a default column off (null means the default): z from beta / se."""
    from enpact.checks import check_study
    from enpact.params import resolve_params

    gwas = gwas_variant(tmp_path, "beta_se.tsv", lambda t: t.drop(columns=["zscore", "pvalue"]))
    params = resolve_params(params_file(tmp_path, gwas=str(gwas), gwas_zscore_column="", gwas_pvalue_column=""))
    assert params["gwas_zscore_column"] == "" and len(check_study(params)) == 240


def test_header_only_and_truncated_gwas(tmp_path, capsys):
    header = tmp_path / "header.tsv"
    header.write_text(gzip.decompress((DEMO / "gwas.tsv.gz").read_bytes()).decode().splitlines()[0] + "\n")
    assert "has a header but no rows" in refused(tmp_path, capsys, gwas=str(header))
    truncated = tmp_path / "truncated.tsv.gz"
    truncated.write_bytes((DEMO / "gwas.tsv.gz").read_bytes()[:30_000])
    assert "truncated" in refused(tmp_path, capsys, gwas=str(truncated))


def test_varid_keys_need_non_rsid_ids(tmp_path, capsys):
    assert "gwas_keep_non_rsid' must be true with snp_key varID" in refused(tmp_path, capsys,
                                                                             gwas_keep_non_rsid=False)


def test_expression_samples_missing_from_the_vcf_are_counted(tmp_path, caplog):
    from enpact.checks import check_study
    from enpact.params import resolve_params

    samples = tmp_path / "ids.txt"
    samples.write_text("\n".join(f"IND{i:03d}" for i in range(1, 80)) + "\n")   # IND080 left out
    with caplog.at_level(logging.WARNING, logger="enpact.checks"):
        check_study(resolve_params(params_file(tmp_path, samples=str(samples))))
    assert "1 of the training matrix's 80 samples are not among the VCF's individuals used (e.g. IND080)" \
        in caplog.text and "uses the 79 shared ones" in caplog.text


def test_genes_dropped_for_their_chromosome_are_a_warning_with_counts(tmp_path, capsys):
    gtf = tmp_path / "genes.gtf"
    lines = (DEMO / "genes.gtf").read_text().splitlines()
    first_gene = next(i for i, line in enumerate(lines) if "\tgene\t" in line)
    lines[first_gene] = lines[first_gene].replace("chr1\t", "chr9\t", 1)   # a contig the FASTA lacks
    gtf.write_text("\n".join(lines) + "\n")
    assert main(["-q", "loci", "--annotation", str(gtf), "--expression", str(DEMO / "expression.tsv"), "--fasta",
                 str(DEMO / "genome.fa"), "--out", str(tmp_path / "loci.tsv")]) == 0
    warnings = capsys.readouterr().err
    assert "WARNING: 6 features on chromosomes in no split (chrX 6) are not trained on" in warnings
    assert "WARNING: 1 features on chromosomes the FASTA lacks (chr9 1) are dropped" in warnings
    dropped = pd.read_csv(tmp_path / "loci.dropped.tsv", sep="\t")
    assert set(dropped["chrom"].dropna()) == {"chrX", "chr9"}


def test_model_folder_follows_the_umask(tmp_path):
    from enpact.io import atomic_directory

    previous = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "model") as staging:
            (staging / "model.json").write_text("{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755


def test_step_errors_name_parameters_not_options(tmp_path, capsys):
    assert param_names("give --zscore-column, or --pvalue-column with a beta column", "twas") == \
        "give gwas_zscore_column, or gwas_pvalue_column with a beta column"
    assert param_names("pass --allow-unphased to use them", "personalize") == "pass allow_unphased: true to use them"
    assert param_names("--folds must be at least 2", "linearize") == "lin_folds must be at least 2"
    assert param_names("--folds must be at least 2", "train") == "model_folds must be at least 2"
    from enpact.runner import Runner
    from enpact.steps import DatabaseConfig

    runner = Runner(tmp_path / "out", progress=False)
    with pytest.raises(Exception) as error:
        runner.step("databases", "database", DatabaseConfig(linearized=(tmp_path / "chunk",), name=".hidden",
                                                            outdir=tmp_path / "db"), [tmp_path / "db"])
    assert "name '.hidden' must be a plain file name stem" in str(error.value) and "--name" not in str(error.value)


def test_too_few_train_loci_and_a_missing_gpu_are_found_before_any_predictor_pass(tmp_path, capsys):
    """Issue 24: "fewer than 10 train loci" came after every reference prediction, `device: cuda` without a GPU
    after the loci step."""
    from enpact.checks import check_splits
    from enpact.errors import EnpactError

    loci = pd.DataFrame({"locus_id": [f"L{i}" for i in range(30)], "chrom": ["chr1"] * 5 + ["chr2"] * 25,
                         "center": range(30), "split": ["train"] * 5 + ["valid"] * 12 + ["test"] * 13})
    with pytest.raises(EnpactError, match=r"only 5 loci are on the train chromosomes \(at least 10 are needed"):
        check_splits(loci, {})
    import torch

    if not torch.cuda.is_available():   # `enpact run` only: a Nextflow task's GPU is the task's own
        capsys.readouterr()
        assert main(["-q", "run", "--params", str(params_file(tmp_path, device="cuda"))]) == 1
        errors = [line for line in capsys.readouterr().err.splitlines() if " error: " in line]
        assert errors == ["enpact run: error: device cuda was requested but no CUDA GPU is visible: use device cpu "
                          "or auto, or check the container's GPU flags"]
        assert not (tmp_path / "results").exists()
