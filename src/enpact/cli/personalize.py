"""`enpact personalize` and `enpact merge`: personalized EnPACT predictions per locus x sample x haplotype."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import add_sample_arguments, existing_file, read_sample_list
from enpact.expression import write_expression
from enpact.genome import Genome
from enpact.loci import read_loci
from enpact.models import load_model
from enpact.personalize import individual_matrix, personalize
from enpact.predictors import load_predictor
from enpact.store import merge_personalized_stores, write_personalized_store
from enpact.variants import VcfReader

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
    p.set_defaults(func=run_personalize)

    m = subparsers.add_parser("merge", help="merge personalized chunk stores",
                              description="Merge personalized stores of chunks (loci x samples) into one; the input "
                              "order does not matter.")
    m.add_argument("--inputs", required=True, nargs="+", type=existing_file)
    m.add_argument("--export-matrix", type=Path, help="also write individual values as a PredictDB-layout matrix")
    m.add_argument("--out", required=True, type=Path)
    m.set_defaults(func=run_merge)


def run_personalize(args: argparse.Namespace) -> int:
    """Personalize one chunk."""
    genome = Genome(args.fasta)
    loci = read_loci(args.loci)
    vcf = VcfReader(args.vcf, read_sample_list(args.samples, args.samples_file), args.allow_unphased)
    model = load_model(args.model)
    spec = model.feature_spec
    predictor = load_predictor(
        spec.predictor, weights=args.weights or spec.weights, device=args.device, precision=args.precision,
        batch_size=args.batch_size, bins=spec.bins, tracks=",".join(spec.tracks), aggregate=spec.aggregate,
        window_bp=spec.window_bp,
    )
    moved = bool(args.weights) and args.weights != spec.weights
    if moved:
        log.warning("using predictor weights %s in place of %s recorded in the model; they must be the same "
                    "checkpoint", args.weights, spec.weights)
    store = personalize(genome, loci, vcf, model, predictor, args.save_features, not args.no_progress, moved,
                        args.allow_precision_mismatch)
    write_personalized_store(args.out, store)
    if args.export_matrix:
        write_expression(individual_matrix(store), args.export_matrix)
    return 0


def run_merge(args: argparse.Namespace) -> int:
    """Merge chunk stores."""
    merged = merge_personalized_stores(args.inputs, args.out)
    if args.export_matrix:
        write_expression(individual_matrix(merged), args.export_matrix)
    log.info("merged %d stores into %s: %d loci x %d samples", len(args.inputs), args.out,
             len(merged.locus_ids), len(merged.samples))
    return 0
