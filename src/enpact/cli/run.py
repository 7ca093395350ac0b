"""`enpact run` (the whole pipeline on one machine) and `enpact demo-weights`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.errors import EnpactError
from enpact.params import DEMOS, resolve_params, write_demo_weights

ORDER = 1
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `run` and `demo-weights` subcommands."""
    p = subparsers.add_parser(
        "run",
        help="run the whole pipeline on this machine (the bundled demo when no --params is given)",
        description="Run loci -> reference features -> train + evaluate -> personalize -> linearize -> databases -> "
        "TWAS -> report on one machine, chunked like the Nextflow pipeline. Re-running resumes: finished chunks are "
        "not recomputed. The parameter file (YAML or JSON) is the one `nextflow run . -params-file` takes.",
    )
    p.add_argument("--params", type=Path, help="parameter file (YAML or JSON); default: the bundled demo")
    p.add_argument("--outdir", type=Path, help="output directory (overrides the parameter file's outdir)")
    p.add_argument("--demo", choices=DEMOS, default="single",
                   help="without --params: the bundled demo with one context (default), with two contexts "
                   "(blood and liver over the same individuals: per-context databases and S-PrediXcan, and "
                   "S-MultiXcan), or with a tiny random Borzoi as the predictor (borzoi: written on first use, "
                   "~130 MB, see `enpact demo-weights`)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)

    w = subparsers.add_parser(
        "demo-weights",
        help="write the tiny random checkpoint a demo predictor needs (borzoi) and print its folder",
        description="Write a tiny randomly initialised checkpoint in the predictor's real format (Borzoi: the real "
        "network with a one-layer transformer, ~130 MB, 4,096 bp windows), deterministically; an existing one is "
        "kept. `enpact run --demo borzoi` does this itself; run it before `nextflow run . -profile test_borzoi`.",
    )
    w.add_argument("predictor", choices=["borzoi"], help="the predictor")
    w.add_argument("--out", type=Path, help="folder to write (default: $XDG_CACHE_HOME/enpact/borzoi_tiny, "
                   "~/.cache/enpact/borzoi_tiny without XDG_CACHE_HOME)")
    w.set_defaults(func=demo_weights)



def run(args: argparse.Namespace) -> int:
    """Resolve parameters and run the pipeline."""
    from enpact.runner import run_pipeline

    overrides = {"outdir": str(args.outdir)} if args.outdir else {}
    if args.params is not None and args.demo != "single":
        raise EnpactError("--demo chooses the bundled demo's parameters; leave it out with --params")
    if args.params is None and args.demo == "borzoi":
        log.info("the demo's tiny random Borzoi (~130 MB) is in %s (written on first use)", write_demo_weights("borzoi"))
    params = resolve_params(args.params, overrides, args.demo)
    if args.params is None:
        log.info("no --params given: running the bundled demo (%s)", args.demo)
    outputs = run_pipeline(params, progress=not args.no_progress)
    if args.params is None:
        log.info("the demo's warnings are expected: it has genes on chrX, which no split names, missing genotype "
                 "calls in its VCF on purpose (the reference base in the haplotype sequences, the site's mean dosage "
                 "in the linear models), and 160 train loci whose cross-validation prefers the smallest penalty")
    outdir = outputs["outdir"]
    print(f"EnPACT finished. Results in {outdir}/\n"
          f"  report:      {outputs['report']}\n"
          + "".join(f"  database:    {db}\n" for db in outputs["databases"])
          + "".join(f"  covariance:  {c}\n" for c in outputs["covariances"])
          + f"  TWAS:        {outputs['twas']}/\n"
          f"  model:       {outdir / 'model'}/ (metrics.json, plots)")
    return 0


def demo_weights(args: argparse.Namespace) -> int:
    """`enpact demo-weights`: write the checkpoint and print where it is."""
    print(write_demo_weights(args.predictor, args.out))
    return 0
