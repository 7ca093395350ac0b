"""`enpact covariance`: the SNP covariance of model databases' SNPs across a reference panel VCF."""

from __future__ import annotations

import argparse
from pathlib import Path

from enpact.cli._common import add_sample_arguments, existing_file, samples_or_none, set_step
from enpact.predictdb import SNP_KEYS
from enpact.steps import CovarianceConfig, covariance

ORDER = 75


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `covariance` subcommand."""
    p = subparsers.add_parser(
        "covariance",
        help="SNP covariance file of model databases' SNPs from a reference panel (e.g. for another ancestry, or "
        "the joint covariance S-MultiXcan needs)",
        description="For each gene, the union of the SNPs the databases' weights use; their dosage covariance across "
        "the panel's individuals (dosage of the database's effect allele; a panel with REF/ALT swapped is flipped), "
        "written as `enpact database` writes covariance files (GENE RSID1 RSID2 VALUE). SNPs absent from the panel "
        "are left out and counted.",
    )
    p.add_argument("--model-db-path", "--model_db_path", dest="model_db_path", type=existing_file, nargs="+",
                   required=True, metavar="DB", help="PredictDB model database(s) (.db)")
    p.add_argument("--vcf", type=existing_file, required=True,
                   help="reference panel: bgzipped, indexed VCF/BCF in the databases' genome build")
    add_sample_arguments(p)
    p.add_argument("--snp-key", "--model-db-snp-key", "--model_db_snp_key", dest="snp_key", choices=SNP_KEYS,
                   default="varID", help="weights column matched to the panel and written as the SNP id: varID "
                   "(chr_pos_ref_alt_build, matched by position and alleles; default) or rsid (matched by the VCF ID "
                   "and alleles at the varID's position)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="covariance file to write (.txt.gz)")
    set_step(p, config, covariance)


def config(args: argparse.Namespace) -> CovarianceConfig:
    """The step's configuration from the arguments."""
    return CovarianceConfig(model_db_path=tuple(args.model_db_path), vcf=args.vcf, out=args.out, snp_key=args.snp_key,
                            samples=samples_or_none(args.samples), samples_file=args.samples_file)
