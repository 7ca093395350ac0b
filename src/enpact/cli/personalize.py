"""`enpact personalize`, `enpact merge`, `enpact rescore` and `enpact accuracy`: personalized EnPACT predictions
per locus x sample x haplotype (from the predictor, or from stored features), and how well they follow the observed
values."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import (add_sample_arguments, add_variant_arguments, existing_file, samples_or_none, set_step,
                                variant_options)
from enpact.steps import (AccuracyConfig, MergeConfig, PersonalizeConfig, RescoreConfig, accuracy, merge, personalize,
                          rescore)

ORDER = 50
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `personalize`, `merge`, `rescore` and `accuracy` subcommands."""
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
    p.add_argument("--model", required=True, nargs="+", type=context_model, metavar="[CONTEXT=]DIR",
                   help="EnPACT model directory (enpact train); or one per context as CONTEXT=DIR: the predictor "
                   "runs once per distinct window and each context's model is applied to the loci the context uses "
                   "(the contexts column of the union loci table, enpact loci-union)")
    p.add_argument("--weights", help="predictor weights (default: those recorded in the model)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16", "fp16", "auto"],
                   help="numeric precision of the forward pass (default fp32; the model's features must match)")
    p.add_argument("--allow-precision-mismatch", action="store_true",
                   help="accept a precision other than the one the model's training features were made at")
    p.add_argument("--save-features", action="store_true", help="also keep predictor features of distinct windows")
    p.add_argument("--export-matrix", type=Path, help="also write individual values as a PredictDB-layout matrix")
    add_variant_arguments(p)
    p.add_argument("--plan", type=existing_file, help="a plan of the chunk (enpact plan): predict the distinct "
                   "windows of its part --part over every individual of the plan; OUT is then a part for "
                   "`enpact merge --plan`")
    p.add_argument("--part", type=int, help="the part of the plan to predict (0-based)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, type=Path, help="output HDF5 personalized store")
    set_step(p, personalize_config, personalize)

    m = subparsers.add_parser("merge", help="merge personalized chunk stores",
                              description="Merge personalized stores of chunks (loci x samples) into one; the input "
                              "order does not matter.")
    m.add_argument("--inputs", required=True, nargs="+", type=existing_file)
    m.add_argument("--export-matrix", type=Path, help="also write individual values as a PredictDB-layout matrix")
    m.add_argument("--plan", type=existing_file, help="the inputs are the parts of this plan (enpact personalize "
                   "--plan): each haplotype gets its distinct window's value")
    m.add_argument("--out", required=True, type=Path)
    set_step(m, merge_config, merge)

    r = subparsers.add_parser(
        "rescore", help="apply another EnPACT model to the predictor features a personalized store kept",
        description="Personalized predictions of a new or retrained EnPACT model without running the predictor: "
        "the model is applied to the features of each distinct window that `enpact personalize --save-features` "
        "kept (chunk or merged store). The model must read features made like these (same predictor, weights, "
        "window, bins, tracks, precision, options); otherwise it is refused with the reason.",
    )
    r.add_argument("--personalized", required=True, type=existing_file,
                   help="personalized store with features (enpact personalize --save-features)")
    r.add_argument("--model", required=True, type=existing_file, help="EnPACT model directory (enpact train)")
    r.add_argument("--context", help="the context to rescore, for a store of several (its loci only)")
    r.add_argument("--allow-precision-mismatch", action="store_true",
                   help="accept features made at another precision than the model's training features")
    r.add_argument("--keep-features", action="store_true", help="keep the features in the new store too")
    r.add_argument("--export-matrix", type=Path, help="also write individual values as a PredictDB-layout matrix")
    r.add_argument("--out", required=True, type=Path, help="output HDF5 personalized store")
    set_step(r, rescore_config, rescore)

    a = subparsers.add_parser(
        "accuracy", help="personalized predictions against the observed values, per gene (a table for the report)",
        description="Per gene, Pearson r between the personalized EnPACT predictions and the observed values across "
        "the individuals the stores and the training matrix share, tested one-sided for r > 0 (p_positive) and "
        "r < 0 (p_negative) against permutations of individuals. Writes OUTDIR/personalized_accuracy.tsv and "
        "OUTDIR/personalized.json (what was compared, window counts).",
    )
    a.add_argument("--personalized", required=True, nargs="+", type=existing_file,
                   help="merged personalized stores (enpact merge)")
    a.add_argument("--expression", required=True, type=existing_file, help="training matrix NAME IND1 ...")
    a.add_argument("--context", help="the context to compare, for stores of several")
    a.add_argument("--seed", type=int, default=0, help="seed of the permutations")
    a.add_argument("--permutations", type=int, default=200, help="permutations of individuals (default 200)")
    a.add_argument("--outdir", required=True, type=Path)
    set_step(a, accuracy_config, accuracy)


def context_model(value: str) -> tuple[str | None, Path]:
    """argparse type: [CONTEXT=]DIR, an existing model directory with an optional context name."""
    name, separator, path = value.partition("=")
    if not separator or Path(value).exists():
        return None, existing_file(value)
    if not name:
        raise argparse.ArgumentTypeError(f"'{value}': the context name before '=' is empty")
    return name, existing_file(path)


def personalize_config(args: argparse.Namespace) -> PersonalizeConfig:
    """The personalize step's configuration from the arguments."""
    return PersonalizeConfig(
        fasta=args.fasta, loci=args.loci, vcf=args.vcf, model=tuple(path for _, path in args.model),
        contexts=tuple(name for name, _ in args.model if name), out=args.out,
        samples=samples_or_none(args.samples), samples_file=args.samples_file, weights=args.weights,
        batch_size=args.batch_size, device=args.device, precision=args.precision, allow_unphased=args.allow_unphased,
        allow_precision_mismatch=args.allow_precision_mismatch, save_features=args.save_features,
        export_matrix=args.export_matrix, **variant_options(args), plan=args.plan, part=args.part, progress=not args.no_progress,
    )


def merge_config(args: argparse.Namespace) -> MergeConfig:
    """The merge step's configuration from the arguments."""
    return MergeConfig(inputs=tuple(args.inputs), out=args.out, export_matrix=args.export_matrix, plan=args.plan)


def accuracy_config(args: argparse.Namespace) -> AccuracyConfig:
    """The accuracy step's configuration from the arguments."""
    return AccuracyConfig(personalized=tuple(args.personalized), expression=args.expression, outdir=args.outdir,
                          context=args.context, seed=args.seed, permutations=args.permutations)


def rescore_config(args: argparse.Namespace) -> RescoreConfig:
    """The rescore step's configuration from the arguments."""
    return RescoreConfig(personalized=args.personalized, model=args.model, out=args.out, context=args.context,
                         allow_precision_mismatch=args.allow_precision_mismatch, keep_features=args.keep_features,
                         export_matrix=args.export_matrix)
