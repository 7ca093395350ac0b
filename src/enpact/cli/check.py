"""`enpact check`: a Nextflow run's parameters, checked with the rules `enpact run` applies."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.params import check_nextflow_params, write_params

ORDER = 2
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `check` subcommand."""
    p = subparsers.add_parser(
        "check",
        help="check a run's parameters (the first task of the Nextflow pipeline) and write the resolved params.json",
        description="Apply the parameter checks of `enpact run --params` to a run's parameters (YAML or JSON; "
        "command-line strings are cast to the schema's types) and write them with the schema's defaults filled "
        "in, as `enpact run` writes pipeline_info/params.json. Input files are not opened.",
    )
    p.add_argument("--params", type=Path, required=True, help="the run's parameters (YAML or JSON)")
    p.add_argument("--out", type=Path, required=True, help="resolved parameters (JSON)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the parameters and write the resolved copy."""
    write_params(args.out, check_nextflow_params(args.params))
    log.info("parameters checked: %s", args.out)
    return 0
