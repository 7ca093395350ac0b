"""Steps around a run: `enpact check` (its parameters and inputs, before anything is computed; the options of every
step for the Nextflow tasks) and `enpact report`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from enpact.errors import EnpactError
from enpact.options import option
from enpact.steps.common import input_file, optional_input, output_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckConfig:
    """`enpact check`: a run's parameters (and, given readable copies, its input files), checked as `enpact run`
    checks them; the resolved parameters written as pipeline_info/params.json, and each step's options from them."""

    params: Path = input_file("the run's parameters (YAML or JSON)", parse=Path)
    out: Path = output_file("resolved parameters (JSON)")
    options_dir: Path | None = option(None, role="output", help="also write each step's options from the "
                                      "parameters, one file per step (DIR/<step>.args: the words a Nextflow task "
                                      "adds to its command line)")
    fasta: Path | None = optional_input("reference FASTA (with its .fai next to it)", parse=Path)
    annotation: Path | None = optional_input("annotation (not with annotation_format names)", parse=Path)
    expression: Path | None = optional_input("training matrix", parse=Path)
    vcf: Path | None = optional_input("phased, indexed VCF/BCF", parse=Path)
    samples_file: Path | None = optional_input("file of sample ids", parse=Path)
    gwas: tuple[Path, ...] = option((), role="input", parse=Path, nargs="+",
                                    help="GWAS files, in the order of the parameter")
    contexts: Path | None = optional_input("the contexts sample sheet (in place of --expression)", parse=Path)
    context_files: tuple[Path, ...] = option((), role="input", parse=Path, nargs="+",
                                             help="the files the sheet names, in its order: each row's expression, "
                                             "then its annotation when the row has one")


def staged_contexts(sheet: Path, files: Sequence[Path], annotation: Path | None, annotation_format: str) -> list:
    """The contexts of a sample sheet with the copies of its files a pipeline task staged (given in the sheet's
    order: each row's expression, then its annotation when it has one)."""
    from enpact.contexts import Context, read_context_sheet

    rows = read_context_sheet(sheet)
    needed = sum(1 + bool(row.get("annotation")) for row in rows)
    if len(files) != needed:
        raise EnpactError(f"{sheet}: names {needed} files, {len(files)} given with --context-files")
    staged, contexts = iter(files), []
    for row in rows:
        expression = next(staged)
        contexts.append(Context(row["context"], expression, next(staged) if row.get("annotation") else annotation,
                                row.get("annotation_format") or annotation_format))
    return contexts


def check(config: CheckConfig) -> dict:
    """Check and write the resolved parameters (and the steps' options)."""
    from enpact.params import check_nextflow_params, read_params_file, write_params

    params = check_nextflow_params(config.params)
    given = [name for name in ("fasta", "expression", "vcf") if getattr(config, name)]
    if config.contexts:
        given.append("expression")
    if given:
        from enpact.checks import StudyFiles, check_study

        if len(given) < 3:
            raise EnpactError("checking the input files needs --fasta, --expression (or --contexts) and --vcf")
        contexts = staged_contexts(config.contexts, config.context_files, config.annotation,
                                   params.get("annotation_format") or "auto") if config.contexts else None
        check_study(params, StudyFiles(config.fasta, contexts[0].expression if contexts else config.expression,
                                       config.vcf, config.annotation, config.samples_file, list(config.gwas),
                                       contexts))
    write_params(config.out, params)
    if config.options_dir is not None:
        from enpact.steps import write_task_options

        write_task_options(config.options_dir, {**params, "use_gpu": read_params_file(config.params).get("use_gpu")})
    log.info("parameters checked: %s", config.out)
    return params


@dataclass(frozen=True)
class ReportConfig:
    """`enpact report`: the HTML report of a finished run's output folder."""

    outdir: Path = input_file("the run's output directory", parse=Path)
    truth_causal_genes: Path | None = optional_input("the truth table (truth_causal_genes), when the run's "
                                                     "params.json names a copy that is not readable here (Nextflow "
                                                     "stages one into the report task)", parse=Path)


def report(config: ReportConfig, params: dict | None = None) -> Path:
    """Write report/index.html (`params`: the run's parameters, else pipeline_info/params.json)."""
    import json

    from enpact.layout import ResultsLayout
    from enpact.report import write_report

    layout = ResultsLayout(config.outdir)
    if params is None:
        if not layout.params_json.exists():
            raise EnpactError(f"{layout.params_json} not found: is {config.outdir} the output directory of an enpact "
                              "run?")
        params = json.loads(layout.params_json.read_text())
    if config.truth_causal_genes:
        params = {**params, "truth_causal_genes": str(config.truth_causal_genes)}
    return write_report(config.outdir, params)
