"""Steps of the personalized predictions: `enpact plan`, `personalize`, `merge`, `rescore`, `accuracy` and
`precision-audit`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from enpact.errors import EnpactError
from enpact.options import comma_list, existing_file, option, render_comma_list
from enpact.steps.common import (PredictorConfig, PredictorProvider, allow_precision_mismatch_option,
                                 allow_unphased_option, batch_size_option, device_option, fasta_option, first_repeat,
                                 input_file, max_missing_option, optional_input, output_file, precision_option,
                                 progress_option, samples_file_option, samples_option, seed_option, selected_samples,
                                 vcf_option, weights_option)
from enpact.steps.loci import predictor_window

log = logging.getLogger(__name__)

VARIANT_CHOICES = ("all", "linearizable")


def linearizable(params: Mapping[str, Any]) -> bool:
    """Whether personalization applies only the variants linearization will use (its filters' parameters then
    shape the haplotypes; otherwise they do not touch a predictor task)."""
    return params.get("personalize_variants") == "linearizable"


@dataclass(frozen=True, kw_only=True)
class VariantOptions:
    """Which variants the personalized haplotypes carry: all, or those linearization will use (its window, its
    filters, allele frequencies over its panel)."""

    variants: str = option("all", param="personalize_variants", choices=VARIANT_CHOICES,
                           help="all (default), or linearizable: only the variants `enpact linearize` with the "
                           "options below will use (inside its window, passing its filters, frequencies over the "
                           "panel)")
    panel_samples_file: Path | None = optional_input("the linearization panel's individuals, for the allele "
                                                     "frequencies (default: all VCF samples)", param="samples")
    lin_window_bp: int | None = option(None, param="lin_window_bp", when=linearizable,
                                       help="the linearization window (default: the predictor's)")
    maf: float = option(0.01, param="lin_maf", when=linearizable, help="minimum minor allele frequency")
    keep_indels: bool = option(False, param="lin_keep_indels", when=linearizable, help="also use indels")
    keep_ambiguous: bool = option(False, param="lin_keep_ambiguous", when=linearizable,
                                  help="also use strand-ambiguous A/T and C/G SNVs")
    keep_multiallelic: bool = option(False, param="lin_keep_multiallelic", when=linearizable,
                                     help="also use multi-allelic sites (one column per ALT)")
    require_rsid: bool = option(False, param="snp_key", value=lambda key: key == "rsid", when=linearizable,
                                help="only variants with an rsid (databases keyed by rsid)")
    max_missing: float = max_missing_option("leave out sites with a larger fraction of missing genotype calls",
                                            when=linearizable)

    def selection(self, vcf: Path, window_bp: int) -> Any:
        """The variants the haplotypes carry: None for all, else those linearization will use."""
        if self.variants == "all":
            return None
        from enpact.variants import LinearizableVariants, VariantFilters, VcfReader, read_sample_list

        panel = read_sample_list(self.panel_samples_file) if self.panel_samples_file else None
        filters = VariantFilters(self.maf, self.keep_indels, self.keep_ambiguous, self.keep_multiallelic,
                                 require_rsid=self.require_rsid, max_missing=self.max_missing)
        return LinearizableVariants(VcfReader(vcf, panel, allow_unphased=True), self.lin_window_bp or window_bp,
                                    filters)


@dataclass(frozen=True)
class PlanConfig(VariantOptions):
    """`enpact plan`: the distinct windows of a loci chunk over every individual (identities only, no sequence),
    split into parts for the predictor tasks."""

    fasta: Path = fasta_option()
    loci: Path = input_file("loci TSV (a chunk)")
    vcf: Path = vcf_option()
    out: Path = output_file("output plan (HDF5)")
    features: Path | None = optional_input("reference feature store (its predictor window)")
    parts_file: Path | None = option(None, role="output", help="also write the number of parts to this file (for "
                                     "workflows)")
    window_bp: int | None = option(None, help="the predictor window (default: that of --features)")
    samples: tuple[str, ...] | None = samples_option()
    samples_file: Path | None = samples_file_option(param="samples")
    windows_per_part: int = option(10000, param="windows_per_part",
                                   help="distinct windows per predictor task (default 10,000)")
    allow_unphased: bool = allow_unphased_option()


def plan(config: PlanConfig) -> None:
    """Plan the chunk and write the plan (and the number of its parts)."""
    from enpact.genome import Genome
    from enpact.io import atomic_path
    from enpact.loci import read_loci
    from enpact.plan import plan_windows, write_plan
    from enpact.variants import VcfReader

    window = config.window_bp or predictor_window(config.features, "--window-bp")
    vcf = VcfReader(config.vcf, selected_samples(config), config.allow_unphased)
    planned = plan_windows(Genome(config.fasta), read_loci(config.loci), vcf, window, config.windows_per_part,
                           config.selection(config.vcf, window))
    write_plan(config.out, planned)
    if config.parts_file:
        with atomic_path(config.parts_file) as tmp:
            tmp.write_text(f"{planned.n_parts}\n")


def context_model(value: str) -> tuple[str | None, Path]:
    """argparse type: [CONTEXT=]DIR, an existing model directory with an optional context name."""
    import argparse

    name, separator, path = value.partition("=")
    if not separator or Path(value).exists():
        return None, existing_file(value)
    if not name:
        raise argparse.ArgumentTypeError(f"'{value}': the context name before '=' is empty")
    return name, existing_file(path)


@dataclass(frozen=True)
class PersonalizeConfig(VariantOptions):
    """`enpact personalize`: the distinct windows of one part of a plan through the predictor and every context's
    EnPACT model."""

    fasta: Path = fasta_option()
    loci: Path = input_file("loci TSV (the plan's chunk)")
    vcf: Path = vcf_option()
    plan: Path = input_file("a plan of the chunk (enpact plan)")
    part: int = option(help="the part of the plan to predict (0-based)")
    model: tuple[Path, ...] = option(role="input", parse=context_model, nargs="+", metavar="[CONTEXT=]DIR",
                                     help="EnPACT model directory (enpact train); or one per context as CONTEXT=DIR: "
                                     "the predictor runs once per distinct window and each context's model is "
                                     "applied to the loci the context uses (the contexts column of the union loci "
                                     "table, enpact loci-union)")
    out: Path = output_file("output part (HDF5) for `enpact merge --plan`")
    contexts: tuple[str, ...] = option((), cli=False)   # the names of --model CONTEXT=DIR
    weights: str | None = weights_option("predictor weights (default: those recorded in the model)")
    batch_size: int = batch_size_option()
    device: str = device_option()
    precision: str = precision_option()
    allow_unphased: bool = allow_unphased_option()
    allow_precision_mismatch: bool = allow_precision_mismatch_option()
    save_features: bool = option(False, param="save_features",
                                 help="also keep predictor features of distinct windows (for enpact rescore)")
    progress: bool = progress_option()

    @staticmethod
    def cli_values(values: dict[str, Any]) -> dict[str, Any]:
        """--model [CONTEXT=]DIR words as the model and contexts fields."""
        named = values["model"]
        return {**values, "model": tuple(path for _, path in named),
                "contexts": tuple(name for name, _ in named if name)}

    def predictor_config(self, model) -> PredictorConfig:
        """The predictor that made the model's training features (weights possibly at another location)."""
        return PredictorConfig.from_spec(model.feature_spec, self.weights, self.batch_size, self.device,
                                         self.precision)


def personalize(config: PersonalizeConfig, predictors: PredictorProvider | None = None) -> None:
    """The distinct windows of one part of a plan, predicted and scored by every model (a part file)."""
    from enpact.genome import Genome
    from enpact.loci import context_mask, read_loci
    from enpact.models import load_model
    from enpact.personalize import check_models, store_meta
    from enpact.plan import predict_part, read_plan, write_part
    from enpact.variants import VcfReader

    if config.contexts and len(config.contexts) != len(config.model):
        raise EnpactError(f"{len(config.contexts)} context names for {len(config.model)} models; name every model "
                          "(--model CONTEXT=DIR)")
    if not config.contexts and len(config.model) != 1:
        raise EnpactError("several models need a context name each (--model CONTEXT=DIR)")
    if len(set(config.contexts)) != len(config.contexts):
        raise EnpactError(f"context '{first_repeat(config.contexts)}' is given twice")
    plan_ = read_plan(config.plan)
    loci = read_loci(config.loci)
    vcf = VcfReader(config.vcf, plan_.samples, config.allow_unphased)
    models = [load_model(path) for path in config.model]
    spec = models[0].feature_spec
    predictor = (predictors or PredictorConfig.load)(config.predictor_config(models[0]))
    moved = bool(config.weights) and config.weights != spec.weights
    if moved:
        log.warning("using predictor weights %s in place of %s recorded in the model; they must be the same "
                    "checkpoint", config.weights, spec.weights)
    named = dict(zip(config.contexts, models)) if config.contexts else {None: models[0]}
    check_models(named, predictor, moved, config.allow_precision_mismatch)
    uses = context_mask(loci, list(config.contexts)) if config.contexts else np.ones((1, len(loci)), dtype=bool)
    selection = config.selection(config.vcf, predictor.window_bp)
    part = predict_part(Genome(config.fasta), loci, vcf, plan_, config.part, models, uses, predictor, selection,
                        config.save_features, config.progress)
    part.meta.update(store=store_meta(named, list(config.contexts) or None, predictor, selection),
                     contexts=list(config.contexts) or None, uses=uses.astype(int).tolist())
    write_part(config.out, part)


@dataclass(frozen=True)
class MergeConfig:
    """`enpact merge`: the parts of a plan as the personalized store of its loci chunk; or personalized stores of
    other loci or individuals as one."""

    inputs: tuple[Path, ...] = input_file("the plan's parts (enpact personalize), or personalized stores")
    out: Path = output_file("personalized store (HDF5)")
    plan: Path | None = optional_input("the plan the parts belong to (enpact plan): each haplotype gets its "
                                       "distinct window's value")
    export_matrix: Path | None = option(None, role="output",
                                        help="also write individual values as a PredictDB-layout matrix")


def merge(config: MergeConfig) -> None:
    """Assemble or merge (any order gives the same bytes)."""
    from enpact.expression import write_expression
    from enpact.personalize import individual_matrix
    from enpact.store import merge_personalized_stores

    store = _assemble(config) if config.plan is not None else merge_personalized_stores(list(config.inputs),
                                                                                       config.out)
    if config.export_matrix:
        write_expression(individual_matrix(store), config.export_matrix)
    log.info("merged %d inputs into %s: %d loci x %d samples", len(config.inputs), config.out,
             len(store.locus_ids), len(store.samples))


def _assemble(config: MergeConfig) -> Any:
    """The personalized store of a plan's chunk from its parts (any order)."""
    from enpact.plan import assemble, read_part, read_plan
    from enpact.store import write_personalized_store

    planned = read_plan(config.plan)
    parts = [(Path(p), read_part(p)) for p in sorted(config.inputs)]
    first = parts[0][1].meta if parts else {}
    for path, part in parts[1:]:
        if {k: v for k, v in part.meta.items() if k != "part"} != {k: v for k, v in first.items() if k != "part"}:
            raise EnpactError(f"{path}: made with other models, predictor or variants than {parts[0][0]}; cannot merge")
    contexts = first.get("contexts")
    uses = np.array(first["uses"], dtype=bool) if contexts else None
    store = assemble(planned, parts, first.get("store", {}), contexts, uses)
    write_personalized_store(config.out, store)
    return store


@dataclass(frozen=True)
class RescoreConfig:
    """`enpact rescore`: another EnPACT model applied to the predictor features a personalized store kept
    (--save-features), without the predictor."""

    personalized: Path = input_file("personalized store with features (enpact personalize --save-features)")
    model: Path = input_file("EnPACT model directory (enpact train)")
    out: Path = output_file("output HDF5 personalized store")
    context: str | None = option(None, help="the context to rescore, for a store of several (its loci only)")
    allow_precision_mismatch: bool = option(False, help="accept features made at another precision than the "
                                            "model's training features")
    keep_features: bool = option(False, help="keep the features in the new store too")
    export_matrix: Path | None = option(None, role="output",
                                        help="also write individual values as a PredictDB-layout matrix")


def rescore(config: RescoreConfig) -> None:
    """Rescore and write the new personalized store."""
    from dataclasses import replace as with_fields

    from enpact.expression import write_expression
    from enpact.models import load_model
    from enpact.personalize import individual_matrix
    from enpact.personalize import rescore as rescore_store
    from enpact.store import read_personalized_store, single_context, write_personalized_store

    store = read_personalized_store(config.personalized, context=config.context)
    store = rescore_store(single_context(store, str(config.personalized)), load_model(config.model),
                          str(config.personalized), config.allow_precision_mismatch)
    write_personalized_store(config.out, store if config.keep_features else with_fields(store, features=None))
    if config.export_matrix:
        write_expression(individual_matrix(store), config.export_matrix)


@dataclass(frozen=True)
class AccuracyConfig:
    """`enpact accuracy`: per gene, personalized predictions against the observed values across the shared
    individuals (one-sided permutation test); the report renders the tables."""

    personalized: tuple[Path, ...] = input_file("merged personalized stores (enpact merge)")
    expression: Path = input_file("training matrix NAME IND1 ...")
    outdir: Path = output_file("folder of personalized_accuracy.tsv and personalized.json")
    context: str | None = option(None, help="the context to compare, for stores of several")
    seed: int = seed_option("seed of the permutations")
    permutations: int = option(200, help="permutations of individuals (default 200)")


def accuracy(config: AccuracyConfig) -> dict:
    """Write OUTDIR/personalized_accuracy.tsv and OUTDIR/personalized.json."""
    from enpact.accuracy import write_accuracy
    from enpact.layout import ACCURACY_SUMMARY, ACCURACY_TABLE

    if config.permutations < 1:
        raise EnpactError("--permutations must be at least 1")
    table, summary = config.outdir / ACCURACY_TABLE, config.outdir / ACCURACY_SUMMARY
    return write_accuracy(sorted(config.personalized), config.expression, table, summary, config.seed,
                          config.permutations, config.context)


@dataclass(frozen=True)
class PrecisionAuditConfig:
    """`enpact precision-audit`: personalized predictions at lower precisions against fp32, on a sample of loci x
    individuals."""

    fasta: Path = fasta_option()
    loci: Path = input_file("loci TSV (e.g. results/loci/loci.tsv)")
    vcf: Path = vcf_option()
    model: Path = input_file("EnPACT model directory")
    out: Path = output_file("per-precision summary TSV; OUT with .loci.tsv instead of .tsv holds the per-locus "
                            "values")
    samples_file: Path | None = optional_input("individuals to sample from (default: the VCF's)")
    weights: str | None = weights_option("predictor weights (default: those recorded in the model)")
    precisions: tuple[str, ...] = option(("bf16", "fp16"), parse=comma_list, render=render_comma_list,
                                         help="precisions to compare with fp32 (default bf16,fp16; also tf32 on "
                                         "GPUs)")
    n_loci: int = option(20, help="loci sampled evenly (default 20)")
    n_samples: int = option(50, help="individuals sampled evenly (default 50)")
    device: str = device_option()
    batch_size: int = batch_size_option()


def precision_audit(config: PrecisionAuditConfig) -> None:
    """Sample, audit, write the per-precision summary and the per-locus table (OUT with .loci.tsv)."""
    from enpact.genome import Genome
    from enpact.io import atomic_path
    from enpact.loci import read_loci
    from enpact.models import load_model
    from enpact.precision_audit import audit_precisions, sample_evenly
    from enpact.variants import VcfReader

    if config.n_loci < 1 or config.n_samples < 3:
        raise EnpactError("--n-loci must be at least 1 and --n-samples at least 3")
    table = read_loci(config.loci)
    table = table[table["locus_id"].isin(sample_evenly(table["locus_id"].tolist(), config.n_loci))]
    vcf_all = VcfReader(config.vcf, selected_samples(config))
    vcf = VcfReader(config.vcf, sample_evenly(list(vcf_all.samples), config.n_samples))
    model = load_model(config.model)
    weights = config.weights or model.feature_spec.weights
    result = audit_precisions(Genome(config.fasta), table, vcf, model, weights, list(config.precisions),
                              lambda precision: PredictorConfig.from_spec(model.feature_spec, weights,
                                                                          config.batch_size, config.device,
                                                                          precision).load())
    with atomic_path(config.out) as tmp:
        result.summary.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    per_locus = config.out.with_name(config.out.name.removesuffix(".tsv") + ".loci.tsv")
    with atomic_path(per_locus) as tmp:
        result.loci.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    for row in result.summary.to_dict("records"):
        log.info("%s: median r with fp32 %.3f over %d loci (%d below 0.5), median error %.0f%% of the "
                 "between-individual spread, %.4f s per window", row["precision"], row["median_r"], row["loci"],
                 row["loci_r_below_0.5"], 100 * row["median_relative_error"], row["seconds_per_window"])
