"""`enpact database`: merge linearization chunks into PredictDB databases and covariance files."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.predictdb import SNP_KEYS
from enpact.cli._common import set_step
from enpact.steps import DatabaseConfig, database

ORDER = 70
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `database` subcommand."""
    p = subparsers.add_parser(
        "database",
        help="build PredictDB databases (.db) and SNP covariance files (.txt.gz) from linearization chunks",
        description="Merge `enpact linearize` chunks into NAME.db and NAME.txt.gz (models passing the filter), "
        "optionally NAME.unfiltered.db/.txt.gz, and NAME.summary.tsv (all loci, with a `kept` column).",
    )
    p.add_argument("--linearized", nargs="+", required=True, metavar="CHUNK",
                   help="linearization chunks (enpact linearize --out) or directories of them (*.h5)")
    p.add_argument("--name", required=True, help="output file name stem")
    p.add_argument("--outdir", type=Path, required=True, metavar="DIR", help="output directory")
    p.add_argument("--snp-key", choices=SNP_KEYS, default="varID",
                   help="SNP id used by the covariance file and TWAS matching (default: varID)")
    p.add_argument("--pval-threshold", type=float, default=0.05, metavar="P",
                   help="keep models with zscore_pval below this (default 0.05)")
    p.add_argument("--rho-threshold", type=float, default=0.1, metavar="RHO",
                   help="keep models with rho_avg above this (default 0.1)")
    p.add_argument("--keep-unfiltered", action="store_true",
                   help="also write NAME.unfiltered.db and NAME.unfiltered.txt.gz")
    p.add_argument("--population", help="population label stored in sample_info")
    p.add_argument("--cv-seed", type=int, help="cross-validation seed stored in construction")
    p.add_argument("--allow-empty", action="store_true",
                   help="write the databases even when no model passes the filters (otherwise an error with the reason)")
    set_step(p, config, database)


def config(args: argparse.Namespace) -> DatabaseConfig:
    """The step's configuration from the arguments."""
    return DatabaseConfig(
        linearized=tuple(Path(p) for p in args.linearized), name=args.name, outdir=args.outdir,
        snp_key=args.snp_key, pval_threshold=args.pval_threshold, rho_threshold=args.rho_threshold,
        keep_unfiltered=args.keep_unfiltered, population=args.population, cv_seed=args.cv_seed,
        allow_empty=args.allow_empty,
    )
