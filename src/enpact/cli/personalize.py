"""`enpact personalize` and `enpact merge`: personalized EnPACT predictions per locus x sample x haplotype."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import add_sample_arguments, existing_file, samples_or_none
from enpact.steps import MergeConfig, PersonalizeConfig, merge, personalize

ORDER = 50
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `personalize` and `merge` subcommands."""
    p = subparsers.add_parser(
        "personalize",
        help="EnPACT predictions for both haplotypes of every individual (one chunk)",
        description="Run the predictor on every distinct haplotype window of a chunk of loci x samples, apply the "
        "EnPACT model on the fly and store the prediction per locus x sample x haplotype (HDF5).",
    )
    p.add_argument("--fasta", required=True, type=existing_file)
    p.add_argument("--loci", required=True, type=existing_file, help="loci TSV (a chunk)")
    p.add_argument("--vcf", required=True, type=existing_file, help="phased, indexed VCF/BCF")
    add_sample_arguments(p)
    p.add_argument("--allow-unphased", action="store_true")
    p.add_argument("--model", required=True, type=existing_file, help="EnPACT model directory (enpact train)")
    p.add_argument("--weights", help="predictor weights (default: those recorded in the model)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16", "fp16", "auto"],
                   help="numeric precision of the forward pass (default fp32; the model's features must match)")
    p.add_argument("--allow-precision-mismatch", action="store_true",
                   help="accept a precision other than the one the model's training features were made at")
    p.add_argument("--save-features", action="store_true", help="also keep predictor features of distinct windows")
    p.add_argument("--export-matrix", type=Path, help="also write individual values as a PredictDB-layout matrix")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, type=Path, help="output HDF5 personalized store")
    p.set_defaults(func=run_personalize, config=personalize_config)

    m = subparsers.add_parser("merge", help="merge personalized chunk stores",
                              description="Merge personalized stores of chunks (loci x samples) into one; the input "
                              "order does not matter.")
    m.add_argument("--inputs", required=True, nargs="+", type=existing_file)
    m.add_argument("--export-matrix", type=Path, help="also write individual values as a PredictDB-layout matrix")
    m.add_argument("--out", required=True, type=Path)
    m.set_defaults(func=run_merge, config=merge_config)


def personalize_config(args: argparse.Namespace) -> PersonalizeConfig:
    """The personalize step's configuration from the arguments."""
    return PersonalizeConfig(
        fasta=args.fasta, loci=args.loci, vcf=args.vcf, model=args.model, out=args.out,
        samples=samples_or_none(args.samples), samples_file=args.samples_file, weights=args.weights,
        batch_size=args.batch_size, device=args.device, precision=args.precision, allow_unphased=args.allow_unphased,
        allow_precision_mismatch=args.allow_precision_mismatch, save_features=args.save_features,
        export_matrix=args.export_matrix, progress=not args.no_progress,
    )


def merge_config(args: argparse.Namespace) -> MergeConfig:
    """The merge step's configuration from the arguments."""
    return MergeConfig(inputs=tuple(args.inputs), out=args.out, export_matrix=args.export_matrix)


def run_personalize(args: argparse.Namespace) -> int:
    """Personalize one chunk."""
    personalize(personalize_config(args))
    return 0


def run_merge(args: argparse.Namespace) -> int:
    """Merge chunk stores."""
    merge(merge_config(args))
    return 0
