"""What the steps share: configurations as plain values, their file roles, the predictor, and the options several
steps take (each defined once here, with its run parameter)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enpact.options import comma_list, option, render_comma_list

log = logging.getLogger(__name__)

DEVICE_HELP = "auto, cpu, cuda or cuda:N"
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "auto")


def fingerprinted(config: Any) -> dict[str, Any]:
    """The fields of a configuration that decide what the step writes, as plain values."""
    values = as_dict(config)
    for f in dataclasses.fields(config):
        if f.metadata.get("fingerprint") is False:
            values.pop(f.name)
    return values


def roles(config: Any) -> dict[str, str]:
    """The file roles of a configuration's fields (nested configurations are not files)."""
    return {f.name: f.metadata["role"] for f in dataclasses.fields(config) if "role" in f.metadata}


def as_dict(config: Any) -> dict[str, Any]:
    """A configuration as plain JSON-ready values (paths as strings, tuples as lists)."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return plain(config)


def first_repeat(values: Sequence[str]) -> str:
    """The first value that occurs twice."""
    seen: set[str] = set()
    return next(v for v in values if v in seen or seen.add(v))


def hyperparameter_pairs(text: str | None) -> tuple[tuple[str, str], ...]:
    """`name=value,...` (--hyperparameters, --predictor-options and their parameters) as (name, value) pairs."""
    from enpact.models.base import parse_hyperparameters

    return tuple(parse_hyperparameters(text).items())


def render_pairs(pairs: Sequence[tuple[str, Any]]) -> str:
    """hyperparameter_pairs' inverse."""
    return ",".join(f"{name}={value}" for name, value in pairs)


def selected_samples(config: Any) -> list[str] | None:
    """The samples a configuration selects (--samples-file, --samples), or None for all of the VCF's."""
    from enpact.variants import read_sample_list

    if config.samples_file:
        return read_sample_list(config.samples_file)
    samples = getattr(config, "samples", None)   # steps with a --samples-file only have none
    return list(samples) if samples else None


# ----------------------------------------------------------------------------------------------------------
# options several steps take


def input_file(help: str = "", **metadata: Any) -> Any:
    """A required input file."""
    return option(role="input", help=help, **metadata)


def optional_input(help: str = "", **metadata: Any) -> Any:
    """An input file that may be left out."""
    return option(None, role="input", help=help, **metadata)


def output_file(help: str = "", **metadata: Any) -> Any:
    """A required output file or folder."""
    return option(role="output", help=help, **metadata)


def fasta_option() -> Any:
    return input_file("indexed reference FASTA", param="fasta")


def vcf_option(required: bool = True) -> Any:
    text = "phased, bgzipped and indexed VCF/BCF"
    return input_file(text, param="vcf") if required else optional_input(text + " (omit for reference windows only)")


def samples_option() -> Any:
    return option(None, parse=comma_list, render=render_comma_list, exclusive="samples",
                  help="comma-separated sample ids (default: all in the VCF)")


def samples_file_option(param: str | None = None) -> Any:
    return optional_input("file with one sample id per line (default: all in the VCF)", exclusive="samples",
                          param=param)


def allow_unphased_option() -> Any:
    return option(False, param="allow_unphased", help="use unphased genotypes in the order written")


def batch_size_option() -> Any:
    return option(4, param="batch_size", help="windows per forward pass (halved on GPU out-of-memory)")


def device_option(help: str = DEVICE_HELP) -> Any:
    return option("auto", param="device", help=help)


def precision_option() -> Any:
    return option("fp32", param="precision", choices=PRECISIONS,
                  help="numeric precision of the forward pass: fp32 (default; auto is the same), or tf32, bf16, "
                  "fp16 on request (see enpact precision-audit); the model's features must match")


def weights_option(help: str) -> Any:
    # a Hugging Face id or a checkpoint folder: a Nextflow task stages the folder, so it is a file option
    return option(None, param="weights", role="input", parse=str, help=help)


def allow_precision_mismatch_option() -> Any:
    return option(False, param="allow_precision_mismatch",
                  help="accept a precision other than the one the model's training features were made at")


def seed_option(help: str = "random seed") -> Any:
    return option(0, param="seed", help=help)


def progress_option() -> Any:
    return option(True, fingerprint=False, help="no progress bar")


def snp_key_option(default: str, help: str, **metadata: Any) -> Any:
    from enpact.predictdb import SNP_KEYS

    return option(default, param="snp_key", choices=SNP_KEYS, help=help, **metadata)


def allow_empty_option(help: str) -> Any:
    return option(False, param="allow_empty_results", help=help)


def max_missing_option(help: str, **metadata: Any) -> Any:
    """The largest fraction of missing genotype calls a site may have (run parameter lin_max_missing): above it a
    site is left out of linear models, covariances and LD; below it a missing call gets the site's mean dosage."""
    return option(0.1, param="lin_max_missing", metavar="FRACTION", help=help, **metadata)


def loci_per_chunk_option() -> Any:
    return option(50, param="loci_per_chunk", help="loci per chunk (default 50)")


# ----------------------------------------------------------------------------------------------------------
# predictor


@dataclass(frozen=True)
class PredictorConfig:
    """Which predictor, with which weights and options, makes the features."""

    predictor: str = option("enformer", param="predictor", help="registered predictor name (default: enformer)")
    weights: str | None = weights_option(
        "Hugging Face model id or local checkpoint directory (default: the predictor's own, "
        "EleutherAI/enformer-official-rough for enformer, johahi/borzoi-replicate-0 for borzoi)")
    bins: int = option(4, param="bins", help="central output bins kept per window, in the predictor's bins "
                       "(128 bp for enformer, 32 bp for borzoi; default: 4)")
    aggregate: str = option("mean", param="aggregate", choices=("mean", "none"),
                            help="average the central bins on the device (mean) or keep each bin (none, for the cnn "
                            "model)")
    tracks: str = option("all", param="tracks",
                         help="tracks to keep: 'all', indexes, ranges a-b or names, comma-separated")
    batch_size: int = batch_size_option()
    device: str = device_option()
    precision: str = precision_option()
    window_bp: int | None = option(None, param="window_bp",
                                   help="input length (default: from the checkpoint's enpact_predictor.json, else the "
                                   "predictor's: 196608 for enformer, 524288 for borzoi)")
    options: tuple[tuple[str, Any], ...] = option(
        (), param="predictor_options", parse=hyperparameter_pairs, render=render_pairs, flags=("--predictor-options",),
        metavar="NAME=VALUE,...", help="the predictor's own options, e.g. head=mouse for enformer (recorded with the "
        "features, so personalize rebuilds the same predictor)")

    @classmethod
    def from_spec(cls, spec: Any, weights: str | None, batch_size: int, device: str,
                  precision: str) -> "PredictorConfig":
        """The predictor that made features of a feature spec (its weights possibly at another location)."""
        return cls(spec.predictor, weights or spec.weights, spec.bins, spec.aggregate, ",".join(spec.tracks),
                   batch_size, device, precision, spec.window_bp, spec.options or ())

    def load(self):
        """Construct the predictor (loads the weights onto the device)."""
        from enpact.predictors import load_predictor

        return load_predictor(self.predictor, weights=self.weights, device=self.device, precision=self.precision,
                              batch_size=self.batch_size, bins=self.bins, tracks=self.tracks,
                              aggregate=self.aggregate, window_bp=self.window_bp, **dict(self.options))


PredictorProvider = Callable[[PredictorConfig], Any]
