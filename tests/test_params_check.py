"""Parameter rules both engines apply before any step: `enpact run --params` and `enpact check` (the first task of
the Nextflow pipeline, fed the run's params as JSON with command-line values as strings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from enpact.cli import main
from enpact.layout import gwas_name, gwas_names
from enpact.params import demo_params


def one_line_error(argv: list[str], capsys) -> str:
    """Run the CLI, expect exit 1 with exactly one stderr line; return it."""
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def nextflow_json(tmp_path: Path, **changes) -> Path:
    """A Nextflow run's params as ENPACT_CHECK receives them: command-line values are strings under the strict
    parser, and Nextflow-only and institutional parameters are mixed in."""
    params = {**demo_params(), "outdir": "results", "use_gpu": False, "publish_dir_mode": "copy",
              "config_profile_name": "Test profile", **changes}
    path = tmp_path / "nextflow_params.json"
    path.write_text(json.dumps(params))
    return path


def test_gwas_output_names_and_clashes():
    assert gwas_name("x/height.sumstats.tsv.gz") == "height.sumstats"
    assert gwas_name("s3://bucket/GWAS/LDL.TXT.BGZ") == "LDL"
    assert gwas_name("a/.tsv") == ".tsv"
    assert gwas_names(["a/height.tsv.gz", "b/ldl.txt"]) == ["height", "ldl"]
    with pytest.raises(Exception, match=r"a/height\.tsv\.gz and b/height\.txt would both write twas/height\.csv"):
        gwas_names(["a/height.tsv.gz", "b/height.txt"])


def test_enpact_check_writes_what_enpact_run_records(tmp_path, capsys):
    """Cast command-line strings, drop Nextflow-only parameters, fill the schema's defaults: the params.json that
    `enpact run` writes for the same study."""
    out = tmp_path / "pipeline_info" / "params.json"
    source = nextflow_json(tmp_path, lin_maf="0.05", loci_per_chunk="60", keep_unfiltered="true", window_bp="4096",
                           lin_gwas_pvalue="5e-8", max_multiqc_email_size="25.MB")
    assert main(["check", "--params", str(source), "--out", str(out)]) == 0
    checked = json.loads(out.read_text())
    assert checked["lin_maf"] == 0.05 and checked["loci_per_chunk"] == 60 and checked["keep_unfiltered"] is True
    assert checked["window_bp"] == 4096 and checked["lin_gwas_pvalue"] == 5e-8
    assert checked["lin_folds"] == 10 and checked["snp_key"] == "varID"            # schema defaults
    assert not {"use_gpu", "publish_dir_mode", "config_profile_name", "max_multiqc_email_size"} & set(checked)
    assert "max_multiqc_email_size" in capsys.readouterr().err                      # unknown: named, then dropped

    runner_out = tmp_path / "run" / "pipeline_info" / "params.json"
    from enpact.params import resolve_params, write_params

    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({**demo_params(), "lin_maf": 0.05, "loci_per_chunk": 60,
                                           "keep_unfiltered": True, "window_bp": 4096, "lin_gwas_pvalue": 5e-8,
                                           "outdir": "results"}))
    write_params(runner_out, resolve_params(params_file))
    assert runner_out.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("changes, message", [
    ({"gwas": "a/height.tsv.gz,b/height.txt"}, "a/height.tsv.gz and b/height.txt would both write twas/height.csv"),
    ({"gwas": None, "lin_gwas_pvalue": "0.001"}, "parameter 'lin_gwas_pvalue' selects loci near GWAS signals and "
                                                 "needs 'gwas'"),
    ({"annotation": None}, "parameter 'annotation' is required (or annotation_format: names"),
    ({"vcf": None}, "parameter 'vcf' is required"),
    ({"bins": "four"}, "parameter 'bins': 'four' is not of type 'integer'"),
    ({"keep_unfiltered": "yes"}, "parameter 'keep_unfiltered': 'yes' is not of type 'boolean'"),
    # a parameter an earlier version took: refused with the reason, not ignored (an old parameter file)
    ({"samples_per_chunk": "40"}, "parameter 'samples_per_chunk' was removed: personalization now plans the distinct "
                                  "haplotype windows over every individual at once (enpact plan), so individuals are "
                                  "no longer split in chunks; windows_per_part sizes the predictor tasks; delete it"),
])
def test_both_engines_refuse_the_same_parameters(changes, message, tmp_path, capsys):
    """The rule lives once (enpact.params): `enpact check` and `enpact run --params` give the same one line."""
    checked = one_line_error(["check", "--params", str(nextflow_json(tmp_path, **changes)),
                              "--out", str(tmp_path / "out.json")], capsys)
    assert message in checked and checked.startswith("enpact check: error: ")
    assert not (tmp_path / "out.json").exists()
    typed = {k: v for k, v in changes.items() if v is not None}
    typed = {k: (float(v) if k == "lin_gwas_pvalue" else v) for k, v in typed.items()}
    params = {**{k: v for k, v in demo_params().items() if k not in changes or changes[k] is not None}, **typed,
              "outdir": str(tmp_path / "results")}
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    ran = one_line_error(["run", "--params", str(params_file)], capsys)
    assert message in ran and ran.startswith("enpact run: error: ")
    assert not (tmp_path / "results").exists()


def test_names_annotation_format_needs_no_annotation(tmp_path):
    out = tmp_path / "params.json"
    source = nextflow_json(tmp_path, annotation=None, annotation_format="names")
    assert main(["check", "--params", str(source), "--out", str(out)]) == 0
    assert "annotation" not in json.loads(out.read_text())


def test_version_of_reports_what_the_modules_record(capsys):
    import platform

    import torch

    from enpact import __version__

    for name, want in (("enpact", __version__), ("python", platform.python_version()), ("torch", torch.__version__)):
        # `enpact --version-of NAME` (what the modules run) is answered before the subcommands load
        assert main(["--version-of", name]) == 0 and capsys.readouterr().out.strip() == want
        # with other options it goes through the argument parser: the same answer
        with pytest.raises(SystemExit) as exit_info:
            main(["-q", "--version-of", name])
        assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == want
    assert main(["--version-of", "not-a-package"]) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["-q", "--version-of", "not-a-package"])
    assert exit_info.value.code == 1


def _schema_names(node) -> set[str]:
    names = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties":
                names |= set(value)
            names |= _schema_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= _schema_names(value)
    return names


def test_nextflow_only_parameters_are_parameters_of_the_pipeline():
    """Each name `enpact run` accepts and ignores as Nextflow's exists in nextflow_schema.json (no dead names)."""
    import json

    from enpact.params import NEXTFLOW_ONLY, schema_path

    declared = _schema_names(json.loads(schema_path().read_text()))
    assert not NEXTFLOW_ONLY - declared, sorted(NEXTFLOW_ONLY - declared)
    assert "multiqc_title" not in declared   # planted: a name of another pipeline would be caught


def test_numbers_as_users_write_them_load_from_yaml(tmp_path):
    """`lin_gwas_pvalue: 5e-8` (the README's own example) is a number, not the text YAML 1.1 makes of it."""
    from enpact.params import read_params_file, resolve_params

    path = tmp_path / "p.yaml"
    path.write_text("lin_gwas_pvalue: 5e-8\ndb_pval_threshold: 1e-300\nlin_maf: 5E-2\nseed: 10\n"
                    "train_chroms: chr1,chr2\n")
    assert read_params_file(path) == {"lin_gwas_pvalue": 5e-8, "db_pval_threshold": 1e-300, "lin_maf": 0.05,
                                      "seed": 10, "train_chroms": "chr1,chr2"}
    demo = {k: v for k, v in demo_params().items() if k != "lin_gwas_pvalue"}
    path.write_text(yaml.safe_dump(demo) + "lin_gwas_pvalue: 5e-8\n")
    assert resolve_params(path, {"outdir": str(tmp_path / "out")})["lin_gwas_pvalue"] == 5e-8


def test_the_example_parameter_files_of_the_docs_load():
    from enpact.params import read_params_file, schema_properties, load_schema

    known = schema_properties(load_schema())
    examples = sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.yaml"))
    assert examples
    for path in examples:
        params = read_params_file(path)
        assert params and set(params) <= set(known), path
