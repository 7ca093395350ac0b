"""`enpact check`: a run's parameters and input files, checked with the code `enpact run` runs first."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import set_step
from enpact.steps import CheckConfig, check

ORDER = 2
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `check` subcommand."""
    p = subparsers.add_parser(
        "check",
        help="check a run's parameters and inputs (the first task of the Nextflow pipeline); write params.json",
        description="Apply the parameter checks of `enpact run --params` to a run's parameters (YAML or JSON; "
        "command-line strings are cast to the schema's types) and write them with the schema's defaults filled "
        "in, as `enpact run` writes pipeline_info/params.json. With --fasta, --expression and --vcf (readable "
        "copies of the inputs the parameters name, e.g. staged by Nextflow), also check the input files as "
        "`enpact run` does before its first step: genome build (REF alleles), phasing, sample ids, chromosome "
        "names, splits, GWAS completeness and ids. With --contexts and --context-files in place of --expression, "
        "every context of the sample sheet is checked.",
    )
    p.add_argument("--params", type=Path, required=True, help="the run's parameters (YAML or JSON)")
    files = p.add_argument_group("input files to check (readable copies of those the parameters name)")
    files.add_argument("--fasta", type=Path, help="reference FASTA (with its .fai next to it)")
    files.add_argument("--annotation", type=Path, help="annotation (not with annotation_format names)")
    files.add_argument("--expression", type=Path, help="training matrix")
    files.add_argument("--vcf", type=Path, help="phased, indexed VCF/BCF")
    files.add_argument("--samples", type=Path, help="file of sample ids")
    files.add_argument("--gwas", type=Path, nargs="+", default=[], help="GWAS files, in the order of the parameter")
    files.add_argument("--contexts", type=Path, help="the contexts sample sheet (in place of --expression)")
    files.add_argument("--context-files", type=Path, nargs="+", default=[],
                       help="the files the sheet names, in its order: each row's expression, then its annotation "
                       "when the row has one")
    p.add_argument("--out", type=Path, required=True, help="resolved parameters (JSON)")
    set_step(p, config, check)


def config(args: argparse.Namespace) -> CheckConfig:
    """The step's configuration from the arguments."""
    return CheckConfig(params=args.params, out=args.out, fasta=args.fasta, annotation=args.annotation,
                       expression=args.expression, vcf=args.vcf, samples=args.samples, gwas=tuple(args.gwas),
                       contexts=args.contexts, context_files=tuple(args.context_files))
