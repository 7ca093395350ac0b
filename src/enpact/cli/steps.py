"""`enpact <step>`: one subcommand per pipeline step, its arguments generated from the step's configuration
(enpact.steps, enpact.options)."""

from __future__ import annotations

import argparse

from enpact.options import add_arguments, from_arguments

ORDER = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add a subcommand for every step."""
    from enpact.steps import STEPS

    for step in STEPS.values():
        parser = subparsers.add_parser(step.name, help=step.help, description=step.description or step.help)
        add_arguments(parser, step.config)
        parser.set_defaults(func=run_step, step=step)


def run_step(args: argparse.Namespace) -> int:
    """A step's subcommand: the configuration from the arguments, then the step."""
    args.step.run(from_arguments(args.step.config, args))
    return 0
