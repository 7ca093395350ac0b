"""One definition per option (enpact.options): the command line, the configuration from run parameters and the
options a Nextflow task receives all come from the configuration's fields, and agree with each other."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from enpact.options import (add_arguments, command_text, comma_list, from_arguments, from_params, option,
                            parameter_names, render_comma_list, task_arguments)


def pairs(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(item.split("=", 1)) for item in comma_list(text))


@dataclass(frozen=True)
class Inner:
    bins: int = option(4, param="bins")
    weights: str | None = option(None, param="weights", role="input", parse=str)


@dataclass(frozen=True)
class Toy:
    source: Path = option(role="input", help="an input file")
    out: Path = option(role="output")
    inner: Inner = Inner()
    maf: float = option(0.01, param="lin_maf", when=lambda p: p.get("variants") == "linearizable")
    folds: int = option(10, param="lin_folds")
    name: str | None = option(None, param="name")
    keep: bool = option(False, param="keep")
    rsid: bool = option(False, param="snp_key", value=lambda v: v == "rsid")
    progress: bool = option(True, fingerprint=False)
    hyper: tuple[tuple[str, str], ...] = option((), param="hyper", parse=pairs,
                                                render=lambda v: ",".join(f"{k}={x}" for k, x in v))
    ids: tuple[str, ...] | None = option(None, parse=comma_list, render=render_comma_list, exclusive="ids")
    ids_file: Path | None = option(None, role="input", exclusive="ids")
    max_m: int | None = option(None, flags=("--MAX-M", "--max-m"))


def parser_for(config_type: type) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser, config_type)
    return parser


def parse(config_type: type, words: list[str]):
    return from_arguments(config_type, parser_for(config_type).parse_args(words))


def test_command_line_from_the_fields(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("x")
    config = parse(Toy, ["--source", str(source), "--out", "o", "--bins", "8", "--keep", "--no-progress",
                         "--hyper", "a=1,b=2", "--ids", "S1,S2", "--MAX-M", "3"])
    assert config == Toy(source=source, out=Path("o"), inner=Inner(bins=8), keep=True, progress=False,
                         hyper=(("a", "1"), ("b", "2")), ids=("S1", "S2"), max_m=3)
    assert parse(Toy, ["--source", str(source), "--out", "o"]) == Toy(source=source, out=Path("o"))


def test_command_line_refuses_what_the_fields_refuse(tmp_path):
    with pytest.raises((SystemExit, argparse.ArgumentError)):   # a required field
        parser_for(Toy).parse_args(["--out", "o"])
    with pytest.raises((SystemExit, argparse.ArgumentError)):   # an input file that does not exist
        parser_for(Toy).parse_args(["--source", str(tmp_path / "missing"), "--out", "o"])
    (tmp_path / "in").write_text("x")
    with pytest.raises((SystemExit, argparse.ArgumentError)):   # mutually exclusive fields
        parser_for(Toy).parse_args(["--source", str(tmp_path / "in"), "--out", "o", "--ids", "a",
                                    "--ids-file", str(tmp_path / "in")])


PARAMS = {"bins": 2, "weights": "hub/model", "lin_maf": 0.05, "variants": "all", "lin_folds": "5", "name": "",
          "keep": "true", "snp_key": "rsid", "hyper": "alpha=0.1"}


def test_configuration_from_parameters():
    config = from_params(Toy, PARAMS, source=Path("in"), out=Path("o"))
    # maf only applies with linearizable variants; '' is unset; text is cast; value maps snp_key to a flag
    assert config == Toy(source=Path("in"), out=Path("o"), inner=Inner(bins=2, weights="hub/model"), folds=5,
                         keep=True, rsid=True, hyper=(("alpha", "0.1"),))
    assert from_params(Toy, {**PARAMS, "variants": "linearizable"}, source=Path("in"), out=Path("o")).maf == 0.05


def test_task_arguments_parse_back_to_the_configuration_from_parameters(tmp_path):
    """What a Nextflow task receives, plus the files it stages, is what `enpact run` builds."""
    source = tmp_path / "in"
    source.write_text("x")
    words = task_arguments(Toy, PARAMS)
    assert "--weights" not in words and "--source" not in words   # files: staged by the task, not options
    assert words == ["--bins", "2", "--folds", "5", "--keep", "--rsid", "--hyper", "alpha=0.1"]
    staged = ["--source", str(source), "--out", "o", "--weights", "hub/model"]
    assert parse(Toy, shlex.split(command_text(words)) + staged) == from_params(Toy, PARAMS, source=source,
                                                                                out=Path("o"))


def test_parameter_names_for_messages():
    names = parameter_names(Toy)
    assert names["--folds"] == "lin_folds" and names["--keep"] == "keep: true" and names["--rsid"] == "snp_key"
    assert names["--bins"] == "bins" and "--max-m" not in names


def test_underscore_spellings_when_the_type_asks():
    @dataclass(frozen=True)
    class Metaxcan:
        UNDERSCORE_FLAGS = True
        model_db_path: str = option("x")

    parser = parser_for(Metaxcan)
    assert parser.parse_args(["--model_db_path", "y"]).model_db_path == "y"
    assert parser.parse_args(["--model-db-path", "z"]).model_db_path == "z"


# ----------------------------------------------------------------------------------------------------------
# the steps' options


def step_options():
    """(step, field, kind, option) for every field of every step's configuration, nested ones included."""
    from enpact.options import option_fields
    from enpact.steps import STEPS

    def walk(step, config_type):
        for f, kind, spec in option_fields(config_type):
            if not kind.many and isinstance(kind.base, type) and hasattr(kind.base, "__dataclass_fields__"):
                yield from walk(step, kind.base)
            else:
                yield step, f, kind, spec

    return [entry for step in STEPS.values() for entry in walk(step, step.config)]


# command-line defaults that differ from the pipeline parameter's on purpose: `enpact twas` and `enpact multixcan`
# default to SPrediXcan.py's, the pipeline to GTEx-harmonised GWAS files and varID-keyed databases
DEFAULTS_OF_THE_TOOLS = {"snp_column", "effect_allele_column", "non_effect_allele_column", "beta_column",
                         "zscore_column", "pvalue_column", "se_column", "keep_non_rsid", "model_db_snp_key"}


def test_every_parameter_an_option_names_is_in_the_schema_with_the_same_default():
    from dataclasses import MISSING

    from enpact.params import load_schema, schema_properties

    schema = schema_properties(load_schema())
    for step, f, kind, spec in step_options():
        if spec.param is None:
            continue
        assert spec.param in schema, f"{step.name} --{f.name}: parameter '{spec.param}' is not in nextflow_schema.json"
        default = schema[spec.param].get("default")
        if (spec.value is not None or f.default is MISSING or f.default is None or default is None or spec.role
                or f.name in DEFAULTS_OF_THE_TOOLS):   # None: the command line leaves it unset
            continue
        assert f.default == default, (f"{step.name} --{f.name} defaults to {f.default!r}, parameter {spec.param} "
                                      f"to {default!r}")


def test_every_step_option_a_parameter_sets_parses_back():
    """For parameters that set every kind of option, each step's task options parse with the step's own parser
    into the values `enpact run` uses (the files a task stages are left out of both)."""
    from enpact.options import UNSET, param_value
    from enpact.steps import STEPS, nextflow_params, task_options

    params = {**DEMO(), "personalize_variants": "linearizable", "lin_maf": 0.05, "snp_key": "rsid",
              "model_hyperparameters": "alpha=0.5", "keep_unfiltered": True, "allow_unphased": True,
              "predictor_options": "head=mouse", "gene_types": "protein_coding"}
    options = task_options(params)
    for name, line in options.items():
        step = STEPS[name]
        parser = argparse.ArgumentParser()
        add_arguments(parser, step.config)
        for action in parser._actions:
            action.required = False   # the files a task stages: not part of the options
        parsed = parser.parse_args(shlex.split(line))
        seen = nextflow_params(step, params)
        for _step, f, kind, spec in [entry for entry in step_options() if entry[0] is step]:
            if spec.param is None or spec.role or not spec.cli:
                continue
            expected = param_value(f, kind, spec, seen)
            value = getattr(parsed, f.name)
            value = tuple(value) if isinstance(value, list) else value
            assert value == (f.default if expected is UNSET else expected), f"{name} --{f.name}"
    assert "--maf 0.05" in options["linearize"] and "--maf 0.05" in options["plan"]
    assert "--require-rsid" in options["personalize"] and "--device cpu" in options["train"]


def test_a_linearization_parameter_changes_no_predictor_task_option():
    """What -resume keeps: a changed lin_maf changes the options of linearize only (with every variant applied in
    personalization), so no predictor task's hash changes."""
    from enpact.steps import task_options

    before = task_options(DEMO())
    after = task_options({**DEMO(), "lin_maf": 0.05})
    assert {name for name in before if before[name] != after[name]} == {"linearize"}
    linearizable = {**DEMO(), "personalize_variants": "linearizable"}
    changed = task_options({**linearizable, "lin_maf": 0.05})
    assert {n for n in changed if changed[n] != task_options(linearizable)[n]} == {"linearize", "plan", "personalize"}


def DEMO() -> dict:
    """The demo's parameters, completed with the schema's defaults as both engines complete them."""
    from enpact.params import resolve_params

    return resolve_params(None, {"outdir": "results"}, "single")


def test_error_messages_name_parameters():
    from enpact.checks import param_names

    assert param_names("pass --allow-unphased to use them", "personalize") == "pass allow_unphased: true to use them"
    assert param_names("lower --maf", "linearize") == "lower lin_maf"
    assert param_names("--folds 3", "train") == "model_folds 3"
