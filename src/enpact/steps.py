"""The pipeline steps: one typed configuration and one function per step.

The `enpact <step>` command lines only turn their arguments into a configuration and call the step; `enpact run`
builds the same configurations from the parameter file and calls the steps directly (handing a live predictor to
the steps that run one); the Nextflow modules run the command lines. A configuration's fields say which are input
and output files (`role` in the field metadata): the runner fingerprints a step by its configuration and the
content of its inputs, and the parity test compares configurations field by field.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from enpact.errors import EnpactError

log = logging.getLogger(__name__)



def _path(role: str, default: Any = dataclasses.MISSING) -> Any:
    """A field that names a file: role input, output or prefix-output (files PREFIX.*)."""
    return field(default=default, metadata={"role": role})


def _unfingerprinted(default: Any) -> Any:
    """A field that does not change what a step writes (progress bars): left out of the runner's fingerprint."""
    return field(default=default, metadata={"fingerprint": False})


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


# ----------------------------------------------------------------------------------------------------------
# predictor


@dataclass(frozen=True)
class PredictorConfig:
    """Which predictor, with which weights and options, makes the features."""

    predictor: str = "enformer"
    weights: str | None = None   # None: the predictor's default weights
    bins: int = 4
    aggregate: str = "mean"
    tracks: str = "all"
    batch_size: int = 4
    device: str = "auto"
    precision: str = "fp32"
    window_bp: int | None = None
    options: tuple[tuple[str, Any], ...] = ()   # the predictor's own options (e.g. Enformer's head)

    @classmethod
    def from_spec(cls, spec: Any, weights: str | None = None, batch_size: int = 4, device: str = "auto",
                  precision: str = "fp32") -> "PredictorConfig":
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


# ----------------------------------------------------------------------------------------------------------
# loci and chunks


@dataclass(frozen=True)
class LociConfig:
    """`enpact loci`: one locus per feature of the matrix, with its chromosome split."""

    expression: Path = _path("input")
    fasta: Path = _path("input")
    out: Path = _path("output")
    annotation: Path | None = _path("input", None)
    annotation_format: str = "auto"
    train_chroms: str | None = None
    valid_chroms: str | None = None
    test_chroms: str | None = None
    gene_types: str | None = None


def loci(config: LociConfig) -> pd.DataFrame:
    """Write the loci table and the dropped features (with reasons); features dropped for their chromosome are a
    warning with counts."""
    from enpact.expression import read_expression
    from enpact.genome import Genome
    from enpact.io import atomic_path
    from enpact.loci import build_loci, write_loci

    if config.annotation is None and config.annotation_format != "names":
        raise EnpactError("--annotation is required unless --annotation-format names")
    matrix = read_expression(config.expression)
    genome = Genome(config.fasta)
    annotation = config.annotation if config.annotation is not None else config.expression
    table, dropped = build_loci(annotation, config.annotation_format, matrix.index.tolist(), genome.chroms,
                                config.train_chroms, config.valid_chroms, config.test_chroms, config.gene_types)
    write_loci(table, config.out)
    dropped_path = config.out.with_name(config.out.name.removesuffix(".tsv") + ".dropped.tsv")
    with atomic_path(dropped_path) as tmp:
        dropped.to_csv(tmp, sep="\t", index=False)
    _warn_dropped(dropped)
    counts = table["split"].value_counts().to_dict()
    log.info("wrote %s: %d loci (%s); %d features dropped (%s), see %s", config.out, len(table),
             ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), len(dropped),
             ", ".join(f"{k} {v}" for k, v in dropped["reason"].value_counts().items()) or "none", dropped_path)
    return table


@dataclass(frozen=True)
class LociUnionConfig:
    """`enpact loci-union`: the contexts' loci tables as one, with the contexts that use each locus."""

    loci: tuple[Path, ...] = _path("input")
    out: Path = _path("output")
    contexts: tuple[str, ...] = ()


def loci_union(config: LociUnionConfig) -> pd.DataFrame:
    """Write the union loci table (one predictor pass then serves every context)."""
    from enpact.loci import check_context_name, read_loci, union_loci, write_loci

    if len(config.loci) != len(config.contexts):
        raise EnpactError(f"{len(config.contexts)} context names for {len(config.loci)} loci tables; give one each")
    if len(set(config.contexts)) != len(config.contexts):
        raise EnpactError(f"context '{_first_repeat(config.contexts)}' is given twice")
    tables = {check_context_name(name, "--contexts"): read_loci(path)
              for name, path in zip(config.contexts, config.loci)}
    union = union_loci(tables)
    write_loci(union, config.out)
    log.info("wrote %s: %d loci used by %d contexts (%s)", config.out, len(union), len(tables),
             ", ".join(f"{name} {len(t)}" for name, t in tables.items()))
    return union


def _first_repeat(values: Sequence[str]) -> str:
    """The first value that occurs twice."""
    seen: set[str] = set()
    return next(v for v in values if v in seen or seen.add(v))


def _warn_dropped(dropped: pd.DataFrame) -> None:
    """Features dropped for their chromosome, at WARNING with counts (the others are expected and in the report)."""
    def where(reason: str) -> tuple[int, str]:
        rows = dropped[dropped["reason"] == reason]
        return len(rows), ", ".join(f"{c} {n}" for c, n in rows["chrom"].value_counts().items())

    n, chroms = where("chromosome_not_in_any_split")
    if n:
        log.warning("%d features on chromosomes in no split (%s) are not trained on, personalized or linearized; "
                    "sex and mitochondrial chromosomes are used only when a split names them (haploid chrX "
                    "genotypes in males are then treated as diploid)", n, chroms)
    n, chroms = where("chromosome_not_in_fasta")
    if n:
        log.warning("%d features on chromosomes the FASTA lacks (%s) are dropped: check the genome build and "
                    "naming", n, chroms)


@dataclass(frozen=True)
class ChunkConfig:
    """`enpact chunk`: loci and samples in chunks named from their content."""

    loci: Path = _path("input")
    outdir: Path = _path("output")
    loci_per_chunk: int = 50
    samples_per_chunk: int = 500
    vcf: Path | None = _path("input", None)
    samples_file: Path | None = _path("input", None)


def chunk(config: ChunkConfig) -> tuple[list[Path], list[Path]]:
    """Write DIR/loci/<first>--<last>.tsv and DIR/samples/<first>--<last>.txt."""
    from enpact.loci import read_loci, write_chunks
    from enpact.variants import VcfReader, read_sample_list

    samples: list[str] = []
    if config.samples_file:
        samples = read_sample_list(config.samples_file)
    elif config.vcf:
        samples = VcfReader(config.vcf).samples
    loci_files, sample_files = write_chunks(read_loci(config.loci), config.loci_per_chunk, samples,
                                            config.samples_per_chunk, config.outdir)
    log.info("wrote %d loci chunks and %d sample chunks under %s", len(loci_files), len(sample_files), config.outdir)
    return loci_files, sample_files


@dataclass(frozen=True)
class SelectConfig:
    """`enpact select`: the loci to personalize (near a GWAS signal, holding a credible-set variant or overlapping a
    region), in chunks; the reference pass and training keep every locus."""

    loci: Path = _path("input")
    out: Path = _path("output")
    chunks: Path = _path("output")
    loci_per_chunk: int = 50
    features: Path | None = _path("input", None)   # the reference feature store: its predictor window
    window_bp: int | None = None
    gwas: Path | None = _path("input", None)
    gwas_snp_column: str = "variant_id"
    gwas_pvalue_column: str = "pvalue"
    gwas_pvalue_threshold: float = 5e-8
    credible_sets: Path | None = _path("input", None)
    regions: Path | None = _path("input", None)


def select(config: SelectConfig) -> pd.DataFrame:
    """Write the selected loci (with the criteria that selected each) and their chunks."""
    from enpact.loci import read_loci, write_loci, write_loci_chunks
    from enpact.selection import read_credible_variants, read_gwas_signal, read_regions, select_loci
    from enpact.store import read_feature_store

    window = config.window_bp
    if not window and config.features is not None:
        window = int(read_feature_store(config.features).meta.get("predictor", {}).get("window_bp", 0))
    if not window:
        raise EnpactError("--window-bp is needed (or --features, the reference store whose predictor window is used)")
    loci = read_loci(config.loci)
    gwas = (read_gwas_signal(config.gwas, config.gwas_snp_column, config.gwas_pvalue_column,
                             config.gwas_pvalue_threshold) if config.gwas else None)
    credible = read_credible_variants(config.credible_sets) if config.credible_sets else None
    regions = read_regions(config.regions) if config.regions else None
    selected = select_loci(loci, window, gwas, credible, regions)
    if selected.empty:
        given = [f"{len(gwas)} GWAS variants with p < {config.gwas_pvalue_threshold:g}" if gwas is not None else "",
                 f"{len(credible)} credible-set variants" if credible is not None else "",
                 f"{len(regions)} regions" if regions is not None else ""]
        raise EnpactError(f"no locus of {config.loci} has {' or '.join(g for g in given if g)} in its "
                          f"{window:,} bp window: nothing to personalize; check the chromosome names and build, or "
                          "widen the selection")
    write_loci(selected, config.out)
    files = write_loci_chunks(selected, config.loci_per_chunk, config.chunks)
    log.info("selected %d of %d loci to personalize (%s); %d chunks under %s", len(selected), len(loci),
             ", ".join(f"{k} {v}" for k, v in selected["selected_by"].value_counts().items()), len(files),
             config.chunks)
    return selected


@dataclass(frozen=True)
class SequenceConfig:
    """`enpact sequence`: the exact predictor input windows as FASTA, for auditing."""

    fasta: Path = _path("input")
    loci: Path = _path("input")
    out: Path = _path("output")
    window_bp: int = field(default=0)
    vcf: Path | None = _path("input", None)
    samples: tuple[str, ...] | None = None
    samples_file: Path | None = _path("input", None)
    allow_unphased: bool = False
    line_width: int = 60


def sequence(config: SequenceConfig) -> int:
    """Write the reference and haplotype windows; returns the record count."""
    from enpact.genome import Genome
    from enpact.loci import read_loci
    from enpact.sequences import write_window_fasta
    from enpact.variants import VcfReader

    vcf = VcfReader(config.vcf, _samples(config), config.allow_unphased) if config.vcf else None
    n = write_window_fasta(config.out, Genome(config.fasta), read_loci(config.loci), config.window_bp, vcf,
                           config.line_width)
    if vcf is not None:
        vcf.counts.log(str(config.vcf))
    log.info("wrote %d windows to %s", n, config.out)
    return n


def _samples(config: Any) -> list[str] | None:
    """The samples a configuration selects (--samples-file, --samples), or None for all of the VCF's."""
    from enpact.variants import read_sample_list

    if config.samples_file:
        return read_sample_list(config.samples_file)
    samples = getattr(config, "samples", None)   # steps with a --samples-file only (precision-audit) have none
    return list(samples) if samples else None


# ----------------------------------------------------------------------------------------------------------
# predictor features


@dataclass(frozen=True)
class PredictConfig:
    """`enpact predict`: predictor features of each locus's reference window (and of each distinct haplotype window
    with a VCF)."""

    fasta: Path = _path("input")
    loci: Path = _path("input")
    out: Path = _path("output")
    predictor: PredictorConfig = PredictorConfig()
    vcf: Path | None = _path("input", None)
    samples: tuple[str, ...] | None = None
    samples_file: Path | None = _path("input", None)
    allow_unphased: bool = False
    progress: bool = _unfingerprinted(True)


def predict(config: PredictConfig, predictors: PredictorProvider | None = None) -> None:
    """Predict and write the feature store (`predictors`: where to get the predictor, e.g. one already loaded)."""
    from enpact.genome import Genome
    from enpact.loci import read_loci
    from enpact.predict import collect_feature_store, dedup_summary, predict_loci
    from enpact.store import write_feature_store
    from enpact.variants import VcfReader

    genome = Genome(config.fasta)
    table = read_loci(config.loci)
    for chrom in table["chrom"].unique():
        genome.resolve(chrom)
    vcf = VcfReader(config.vcf, _samples(config), config.allow_unphased) if config.vcf else None
    predictor = (predictors or PredictorConfig.load)(config.predictor)
    predictions = predict_loci(predictor, genome, table, vcf, progress=config.progress)
    meta = {"predictor": predictor.describe(), "vcf": str(config.vcf) if config.vcf else None}
    store = collect_feature_store(predictions, table["locus_id"].tolist(), vcf.samples if vcf else [], meta)
    write_feature_store(config.out, store)
    if vcf is not None:
        vcf.counts.log(str(config.vcf))
    summary = dedup_summary(store)
    log.info("wrote %s: %d loci, %d windows predicted for %d haplotype windows (%.1f%%)", config.out,
             summary["loci"], summary["predicted_windows"], summary["haplotype_windows"],
             100 * summary["fraction_predicted"])


@dataclass(frozen=True)
class MergeFeaturesConfig:
    """`enpact merge-features`: the reference feature stores of loci chunks, concatenated."""

    inputs: tuple[Path, ...] = _path("input")
    out: Path = _path("output")


def merge_features(config: MergeFeaturesConfig) -> None:
    """Concatenate and write."""
    from enpact.store import merge_feature_stores, write_feature_store

    write_feature_store(config.out, merge_feature_stores(list(config.inputs)))


# ----------------------------------------------------------------------------------------------------------
# EnPACT model


@dataclass(frozen=True)
class TrainConfig:
    """`enpact train`: fit on the train chromosomes, evaluate on valid and test."""

    features: Path = _path("input")
    loci: Path = _path("input")
    expression: Path = _path("input")
    outdir: Path = _path("output")
    model_type: str = "elastic_net"
    folds: int = 5
    seed: int = 0
    device: str = "auto"
    baseline_track: str | None = None
    hyperparameters: tuple[tuple[str, str], ...] = ()   # (name, value) pairs, checked against the model type's


def train(config: TrainConfig) -> None:
    """Train and evaluate."""
    from enpact.models.base import check_hyperparameters
    from enpact.training import train_and_evaluate, training_data  # matplotlib and scikit-learn: only here

    hyperparameters = check_hyperparameters(config.model_type, dict(config.hyperparameters))
    data = training_data(config.features, config.loci, config.expression)
    train_and_evaluate(*data, config.model_type, config.outdir, folds=config.folds, seed=config.seed,
                       device=config.device, baseline_track=config.baseline_track, hyperparameters=hyperparameters)


def hyperparameter_pairs(text: str | None) -> tuple[tuple[str, str], ...]:
    """`name=value,...` (--hyperparameters, --predictor-options and their parameters) as (name, value) pairs."""
    from enpact.models.base import parse_hyperparameters

    return tuple(parse_hyperparameters(text).items())


@dataclass(frozen=True)
class EvaluateConfig:
    """`enpact evaluate`: a saved model on other loci or targets."""

    model: Path = _path("input")
    features: Path = _path("input")
    loci: Path = _path("input")
    expression: Path = _path("input")
    outdir: Path = _path("output")
    device: str = "auto"
    baseline_track: str | None = None


def evaluate(config: EvaluateConfig) -> None:
    """Evaluate a saved model."""
    from enpact.training import evaluate_model, training_data

    features, y, splits, ids, spec = training_data(config.features, config.loci, config.expression)
    evaluate_model(config.model, features, y, splits, ids, config.outdir, feature_spec=spec,
                   baseline_track=config.baseline_track, device=config.device)


# ----------------------------------------------------------------------------------------------------------
# personalized predictions


@dataclass(frozen=True, kw_only=True)
class VariantOptions:
    """Which variants the personalized haplotypes carry: all, or those linearization will use (its window, its
    filters, allele frequencies over its panel)."""

    variants: str = "all"
    panel_samples_file: Path | None = _path("input", None)   # the linearization panel (default: the VCF's samples)
    lin_window_bp: int | None = None
    maf: float = 0.01
    keep_indels: bool = False
    keep_ambiguous: bool = False
    keep_multiallelic: bool = False
    require_rsid: bool = False


@dataclass(frozen=True)
class PersonalizeConfig(VariantOptions):
    """`enpact personalize`: predictor + EnPACT model on both haplotypes of every individual, for one chunk."""

    fasta: Path = _path("input")
    loci: Path = _path("input")
    vcf: Path = _path("input")
    model: tuple[Path, ...] = _path("input")   # one model; or one per context, named in `contexts`
    out: Path = _path("output")
    contexts: tuple[str, ...] = ()
    samples: tuple[str, ...] | None = None
    samples_file: Path | None = _path("input", None)
    weights: str | None = None
    batch_size: int = 4
    device: str = "auto"
    precision: str = "fp32"
    allow_unphased: bool = False
    allow_precision_mismatch: bool = False
    save_features: bool = False
    export_matrix: Path | None = _path("output", None)
    plan: Path | None = _path("input", None)   # with a plan: predict the distinct windows of one of its parts
    part: int | None = None
    progress: bool = _unfingerprinted(True)

    def predictor_config(self, model) -> PredictorConfig:
        """The predictor that made the model's training features (weights possibly at another location)."""
        return PredictorConfig.from_spec(model.feature_spec, self.weights, self.batch_size, self.device,
                                         self.precision)


def personalize(config: PersonalizeConfig, predictors: PredictorProvider | None = None) -> None:
    """Personalize the chunk and write its store (`predictors`: where to get the predictor the model needs)."""
    from enpact.expression import write_expression
    from enpact.genome import Genome
    from enpact.loci import read_loci
    from enpact.models import load_model
    from enpact.personalize import individual_matrix
    from enpact.personalize import personalize as personalize_chunk
    from enpact.store import write_personalized_store
    from enpact.variants import VcfReader

    if config.contexts and len(config.contexts) != len(config.model):
        raise EnpactError(f"{len(config.contexts)} context names for {len(config.model)} models; name every model "
                          "(--model CONTEXT=DIR)")
    if not config.contexts and len(config.model) != 1:
        raise EnpactError("several models need a context name each (--model CONTEXT=DIR)")
    if len(set(config.contexts)) != len(config.contexts):
        raise EnpactError(f"context '{_first_repeat(config.contexts)}' is given twice")
    if config.export_matrix and config.contexts:
        raise EnpactError("--export-matrix needs one context; export from `enpact rescore --context` or the merged "
                          "store")
    if (config.plan is None) != (config.part is None):
        raise EnpactError("--plan and --part go together: a plan's part is predicted")
    if config.plan is not None:
        return _personalize_part(config, predictors)
    vcf = VcfReader(config.vcf, _samples(config), config.allow_unphased)
    models = [load_model(path) for path in config.model]
    spec = models[0].feature_spec
    predictor = (predictors or PredictorConfig.load)(config.predictor_config(models[0]))
    moved = bool(config.weights) and config.weights != spec.weights
    if moved:
        log.warning("using predictor weights %s in place of %s recorded in the model; they must be the same "
                    "checkpoint", config.weights, spec.weights)
    applied = dict(zip(config.contexts, models)) if config.contexts else models[0]
    store = personalize_chunk(Genome(config.fasta), read_loci(config.loci), vcf, applied, predictor,
                              config.save_features, config.progress, moved, config.allow_precision_mismatch,
                              _variant_selection(config, predictor.window_bp))
    write_personalized_store(config.out, store)
    if config.export_matrix:
        write_expression(individual_matrix(store), config.export_matrix)


def _personalize_part(config: PersonalizeConfig, predictors: PredictorProvider | None) -> None:
    """The distinct windows of one part of a plan, predicted and scored by every model (a part file)."""
    from enpact.genome import Genome
    from enpact.loci import context_mask, read_loci
    from enpact.models import load_model
    from enpact.personalize import check_models, store_meta
    from enpact.plan import predict_part, read_plan, write_part
    from enpact.variants import VcfReader

    if config.samples or config.samples_file or config.export_matrix:
        raise EnpactError("with --plan the individuals are the plan's: leave out --samples, --samples-file and "
                          "--export-matrix (export from the merged store)")
    plan = read_plan(config.plan)
    loci = read_loci(config.loci)
    vcf = VcfReader(config.vcf, plan.samples, config.allow_unphased)
    models = [load_model(path) for path in config.model]
    spec = models[0].feature_spec
    predictor = (predictors or PredictorConfig.load)(config.predictor_config(models[0]))
    moved = bool(config.weights) and config.weights != spec.weights
    named = dict(zip(config.contexts, models)) if config.contexts else {None: models[0]}
    check_models(named, predictor, moved, config.allow_precision_mismatch)
    uses = context_mask(loci, list(config.contexts)) if config.contexts else np.ones((1, len(loci)), dtype=bool)
    selection = _variant_selection(config, predictor.window_bp)
    part = predict_part(Genome(config.fasta), loci, vcf, plan, config.part, models, uses, predictor, selection,
                        config.save_features, config.progress)
    part.meta.update(store=store_meta(named, list(config.contexts) or None, predictor, selection),
                     contexts=list(config.contexts) or None, uses=uses.astype(int).tolist())
    write_part(config.out, part)


@dataclass(frozen=True)
class PlanConfig(VariantOptions):
    """`enpact plan`: the distinct windows of a loci chunk over every individual (identities only, no sequence),
    split into parts for the predictor tasks."""

    fasta: Path = _path("input")
    loci: Path = _path("input")
    vcf: Path = _path("input")
    out: Path = _path("output")
    features: Path | None = _path("input", None)   # the reference feature store: its predictor window
    parts_file: Path | None = _path("output", None)   # the number of parts, for a workflow to scatter on
    window_bp: int | None = None
    samples: tuple[str, ...] | None = None
    samples_file: Path | None = _path("input", None)
    windows_per_part: int = 10000
    allow_unphased: bool = False


def plan(config: PlanConfig) -> None:
    """Plan the chunk and write the plan (and the number of its parts)."""
    from enpact.genome import Genome
    from enpact.io import atomic_path
    from enpact.loci import read_loci
    from enpact.plan import plan_windows, write_plan
    from enpact.store import read_feature_store
    from enpact.variants import VcfReader

    window = config.window_bp
    if not window and config.features is not None:
        window = int(read_feature_store(config.features).meta.get("predictor", {}).get("window_bp", 0))
    if not window:
        raise EnpactError("--window-bp is needed (or --features, the reference store whose predictor window is used)")
    vcf = VcfReader(config.vcf, _samples(config), config.allow_unphased)
    planned = plan_windows(Genome(config.fasta), read_loci(config.loci), vcf, window, config.windows_per_part,
                           _variant_selection(config, window))
    write_plan(config.out, planned)
    if config.parts_file:
        with atomic_path(config.parts_file) as tmp:
            tmp.write_text(f"{planned.n_parts}\n")


VARIANT_CHOICES = ("all", "linearizable")


def _variant_selection(config: VariantOptions, window_bp: int) -> Any:
    """The variants the haplotypes carry: None for all, else those linearization will use (LinearizableVariants)."""
    if config.variants not in VARIANT_CHOICES:
        raise EnpactError(f"--variants must be one of {', '.join(VARIANT_CHOICES)}, not '{config.variants}'")
    if config.variants == "all":
        return None
    from enpact.linearize import LinearizableVariants, VariantFilters
    from enpact.variants import VcfReader, read_sample_list

    panel = read_sample_list(config.panel_samples_file) if config.panel_samples_file else None
    filters = VariantFilters(config.maf, config.keep_indels, config.keep_ambiguous, config.keep_multiallelic,
                             require_rsid=config.require_rsid)
    return LinearizableVariants(VcfReader(config.vcf, panel, allow_unphased=True), config.lin_window_bp or window_bp,
                                filters)


@dataclass(frozen=True)
class RescoreConfig:
    """`enpact rescore`: another EnPACT model applied to the predictor features a personalized store kept
    (--save-features), without the predictor."""

    personalized: Path = _path("input")
    model: Path = _path("input")
    out: Path = _path("output")
    context: str | None = None
    allow_precision_mismatch: bool = False
    keep_features: bool = False
    export_matrix: Path | None = _path("output", None)


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
class MergeConfig:
    """`enpact merge`: the personalized stores of a loci chunk's sample chunks, as one."""

    inputs: tuple[Path, ...] = _path("input")
    out: Path = _path("output")
    export_matrix: Path | None = _path("output", None)
    plan: Path | None = _path("input", None)   # with a plan: the inputs are its parts


def merge(config: MergeConfig) -> None:
    """Merge (any order gives the same bytes)."""
    from enpact.expression import write_expression
    from enpact.personalize import individual_matrix
    from enpact.store import merge_personalized_stores

    merged = _assemble(config) if config.plan is not None else merge_personalized_stores(list(config.inputs),
                                                                                        config.out)
    if config.export_matrix:
        write_expression(individual_matrix(merged), config.export_matrix)
    log.info("merged %d stores into %s: %d loci x %d samples", len(config.inputs), config.out,
             len(merged.locus_ids), len(merged.samples))


def _assemble(config: MergeConfig) -> Any:
    """The personalized store of a plan's chunk from its parts (any order)."""
    from enpact.plan import assemble, read_part, read_plan
    from enpact.store import write_personalized_store

    plan = read_plan(config.plan)
    parts = [(Path(p), read_part(p)) for p in sorted(config.inputs)]
    first = parts[0][1].meta if parts else {}
    for path, part in parts[1:]:
        if {k: v for k, v in part.meta.items() if k != "part"} != {k: v for k, v in first.items() if k != "part"}:
            raise EnpactError(f"{path}: made with other models, predictor or variants than {parts[0][0]}; cannot merge")
    contexts = first.get("contexts")
    uses = np.array(first["uses"], dtype=bool) if contexts else None
    store = assemble(plan, parts, first.get("store", {}), contexts, uses)
    write_personalized_store(config.out, store)
    return store


@dataclass(frozen=True)
class AccuracyConfig:
    """`enpact accuracy`: per gene, personalized predictions against the observed values across the shared
    individuals (one-sided permutation test); the report renders the tables."""

    personalized: tuple[Path, ...] = _path("input")
    expression: Path = _path("input")
    outdir: Path = _path("output")
    context: str | None = None
    seed: int = 0
    permutations: int = 200


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

    fasta: Path = _path("input")
    loci: Path = _path("input")
    vcf: Path = _path("input")
    model: Path = _path("input")
    out: Path = _path("output")
    samples_file: Path | None = _path("input", None)
    weights: str | None = None
    precisions: tuple[str, ...] = ("bf16", "fp16")
    n_loci: int = 20
    n_samples: int = 50
    device: str = "auto"
    batch_size: int = 4


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
    vcf_all = VcfReader(config.vcf, _samples(config))
    vcf = VcfReader(config.vcf, sample_evenly(list(vcf_all.samples), config.n_samples))
    model = load_model(config.model)
    weights = config.weights or model.feature_spec.weights
    result = audit_precisions(Genome(config.fasta), table, vcf, model, weights, list(config.precisions),
                              lambda precision: PredictorConfig.from_spec(model.feature_spec, weights, config.batch_size,
                                                                          config.device, precision).load())
    with atomic_path(config.out) as tmp:
        result.summary.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    per_locus = config.out.with_name(config.out.name.removesuffix(".tsv") + ".loci.tsv")
    with atomic_path(per_locus) as tmp:
        result.loci.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    for row in result.summary.to_dict("records"):
        log.info("%s: median r with fp32 %.3f over %d loci (%d below 0.5), median error %.0f%% of the "
                 "between-individual spread, %.4f s per window", row["precision"], row["median_r"], row["loci"],
                 row["loci_r_below_0.5"], 100 * row["median_relative_error"], row["seconds_per_window"])


# ----------------------------------------------------------------------------------------------------------
# linearization, databases, TWAS


@dataclass(frozen=True)
class LinearizeConfig:
    """`enpact linearize`: per locus, an elastic net from variant dosages to the personalized values."""

    personalized: Path = _path("input")
    vcf: Path = _path("input")
    loci: Path = _path("input")
    out: Path = _path("output")
    window_bp: int | None = None
    maf: float = 0.01
    keep_indels: bool = False
    keep_ambiguous: bool = False
    keep_multiallelic: bool = False
    require_rsid: bool = False
    build: str = "b38"
    folds: int = 10
    alpha: float = 0.5
    seed: int = 0
    min_snps: int = 2
    gwas: Path | None = _path("input", None)
    gwas_snp_column: str = "variant_id"
    gwas_pvalue_column: str = "pvalue"
    gwas_pvalue_threshold: float = 5e-8
    context: str | None = None
    progress: bool = _unfingerprinted(True)


def linearize(config: LinearizeConfig) -> None:
    """Linearize the loci of a personalized store and write the chunk."""
    # imported here: the numba engine is slow to import, and every other step would pay for it
    from enpact.linearize import FitSettings, VariantFilters
    from enpact.selection import loci_near_signal, read_gwas_signal
    from enpact.linearize import linearize as linearize_loci
    from enpact.loci import read_loci
    from enpact.predictdb import write_linearized_chunk
    from enpact.store import read_personalized_store, single_context
    from enpact.variants import VcfReader

    store = single_context(read_personalized_store(config.personalized, False, config.context),
                           str(config.personalized))
    table = read_loci(config.loci)
    table = table[table["locus_id"].isin(store.locus_ids)] if len(table) > len(store.locus_ids) else table
    window = config.window_bp or int(store.meta.get("predictor", {}).get("window_bp", 0))
    if window <= 0:
        raise EnpactError(f"{config.personalized}: no predictor window recorded; pass --window-bp")
    vcf = VcfReader(config.vcf, store.samples, allow_unphased=True)
    selected = None
    if config.gwas:
        hits = read_gwas_signal(config.gwas, config.gwas_snp_column, config.gwas_pvalue_column,
                                config.gwas_pvalue_threshold)
        selected = loci_near_signal(table, hits, window)
        log.info("%d of %d loci have a GWAS variant with p < %g in their window", int(np.sum(selected)), len(table),
                 config.gwas_pvalue_threshold)
    filters = VariantFilters(config.maf, config.keep_indels, config.keep_ambiguous, config.keep_multiallelic,
                             config.build, config.require_rsid)
    settings = FitSettings(config.alpha, config.folds, config.seed, config.min_snps)
    summary, weights, covariances = linearize_loci(store, table, vcf, window, filters, settings, selected,
                                                   progress=config.progress)
    write_linearized_chunk(config.out, summary, weights, covariances)
    log.info("wrote %s", config.out)


@dataclass(frozen=True)
class DatabaseConfig:
    """`enpact database`: PredictDB databases, covariances and the merged summary from linearization chunks."""

    linearized: tuple[Path, ...] = _path("input")
    name: str = "enpact"
    outdir: Path = _path("output", Path("."))
    snp_key: str = "varID"
    pval_threshold: float = 0.05
    rho_threshold: float = 0.1
    keep_unfiltered: bool = False
    population: str | None = None
    cv_seed: int | None = None
    allow_empty: bool = False


def database(config: DatabaseConfig) -> None:
    """Build and write the databases."""
    from enpact.predictdb import build_database

    outputs = build_database(
        list(config.linearized), config.name, config.outdir, snp_key=config.snp_key,
        pval_threshold=config.pval_threshold, rho_threshold=config.rho_threshold,
        keep_unfiltered=config.keep_unfiltered, population=config.population, cv_seed=config.cv_seed,
        allow_empty=config.allow_empty,
    )
    log.info("wrote %s (%d models) and %s", outputs.db, outputs.n_genes, outputs.covariance)
    if outputs.unfiltered_db:
        log.info("wrote %s (%d models) and %s", outputs.unfiltered_db, outputs.n_genes_unfiltered,
                 outputs.unfiltered_covariance)


@dataclass(frozen=True, kw_only=True)
class GwasOptions:
    """How S-PrediXcan and S-MultiXcan read GWAS files and key the models' SNPs (SPrediXcan.py's options)."""

    snp_column: str = "SNP"
    effect_allele_column: str = "A1"
    non_effect_allele_column: str = "A2"
    beta_column: str | None = None
    se_column: str | None = None
    zscore_column: str | None = None
    pvalue_column: str | None = None
    or_column: str | None = None
    beta_sign_column: str | None = None
    separator: str | None = None
    model_db_snp_key: str = "rsid"
    keep_non_rsid: bool = False
    input_pvalue_fix: float = 1e-50

    def columns(self) -> Any:
        """The GWAS columns to read (enpact.twas.GwasColumns)."""
        from enpact.twas import GwasColumns

        return GwasColumns(
            snp=self.snp_column, effect_allele=self.effect_allele_column,
            non_effect_allele=self.non_effect_allele_column, beta=self.beta_column, se=self.se_column,
            zscore=self.zscore_column, pvalue=self.pvalue_column, odds_ratio=self.or_column,
            beta_sign=self.beta_sign_column,
        )


@dataclass(frozen=True)
class TwasConfig(GwasOptions):
    """`enpact twas`: S-PrediXcan of GWAS files against a database (MetaXcan SPrediXcan.py's method and columns)."""

    model_db_path: Path = _path("input")
    covariance: Path = _path("input")
    gwas_file: tuple[Path, ...] = _path("input")
    output_file: str = field(default="", metadata={"role": "output"})
    gwas_h2: float | None = None
    gwas_n: float | None = None
    plots_prefix: str | None = field(default=None, metadata={"role": "prefix-output"})
    gene_positions: Path | None = _path("input", None)
    allow_empty: bool = False


def twas(config: TwasConfig) -> list[Path]:
    """Run S-PrediXcan for each GWAS file."""
    from enpact.twas import run_twas

    if config.input_pvalue_fix < 0:
        raise EnpactError("--input-pvalue-fix must be 0 or a positive p-value")
    columns = config.columns()
    return run_twas(
        config.model_db_path, config.covariance, list(config.gwas_file), columns, config.output_file,
        snp_key=config.model_db_snp_key, keep_non_rsid=config.keep_non_rsid, separator=config.separator,
        input_pvalue_fix=config.input_pvalue_fix, gwas_h2=config.gwas_h2, gwas_n=config.gwas_n,
        plots_prefix=config.plots_prefix, gene_positions_path=config.gene_positions, allow_empty=config.allow_empty,
    )


# ----------------------------------------------------------------------------------------------------------
# parameters and report


@dataclass(frozen=True)
class CheckConfig:
    """`enpact check`: a run's parameters (and, given readable copies, its input files), checked as `enpact run`
    checks them; the resolved parameters written as pipeline_info/params.json."""

    params: Path = _path("input")
    out: Path = _path("output")
    fasta: Path | None = _path("input", None)
    annotation: Path | None = _path("input", None)
    expression: Path | None = _path("input", None)
    vcf: Path | None = _path("input", None)
    samples: Path | None = _path("input", None)
    gwas: tuple[Path, ...] = _path("input", ())
    contexts: Path | None = _path("input", None)
    context_files: tuple[Path, ...] = _path("input", ())


def staged_contexts(sheet: Path, files: Sequence[Path], annotation: Path | None, annotation_format: str) -> list:
    """The contexts of a sample sheet with the copies of its files a pipeline task staged (given in the sheet's
    order: each row's expression, then its annotation when it has one)."""
    from enpact.contexts import Context, read_context_sheet

    rows = read_context_sheet(sheet)
    needed = sum(1 + bool(row.get("annotation")) for row in rows)
    if len(files) != needed:
        raise EnpactError(f"{sheet}: names {needed} files, {len(files)} given with --context-files")
    staged, contexts = iter(files), []
    for row in rows:
        expression = next(staged)
        contexts.append(Context(row["context"], expression, next(staged) if row.get("annotation") else annotation,
                                row.get("annotation_format") or annotation_format))
    return contexts


def check(config: CheckConfig) -> dict:
    """Check and write the resolved parameters."""
    from enpact.params import check_nextflow_params, write_params

    params = check_nextflow_params(config.params)
    given = [name for name in ("fasta", "expression", "vcf") if getattr(config, name)]
    if config.contexts:
        given.append("expression")
    if given:
        from enpact.checks import StudyFiles, check_study

        if len(given) < 3:
            raise EnpactError("checking the input files needs --fasta, --expression (or --contexts) and --vcf")
        contexts = staged_contexts(config.contexts, config.context_files, config.annotation,
                                   params.get("annotation_format") or "auto") if config.contexts else None
        check_study(params, StudyFiles(config.fasta, contexts[0].expression if contexts else config.expression,
                                       config.vcf, config.annotation, config.samples, list(config.gwas), contexts))
    write_params(config.out, params)
    log.info("parameters checked: %s", config.out)
    return params


@dataclass(frozen=True)
class ReportConfig:
    """`enpact report`: the HTML report of a finished run's output folder."""

    outdir: Path = _path("input")
    truth_causal_genes: Path | None = _path("input", None)


def report(config: ReportConfig, params: dict | None = None) -> Path:
    """Write report/index.html (`params`: the run's parameters, else pipeline_info/params.json)."""
    import json

    from enpact.layout import ResultsLayout
    from enpact.report import write_report

    layout = ResultsLayout(config.outdir)
    if params is None:
        if not layout.params_json.exists():
            raise EnpactError(f"{layout.params_json} not found: is {config.outdir} the output directory of an enpact "
                              "run?")
        params = json.loads(layout.params_json.read_text())
    if config.truth_causal_genes:
        params = {**params, "truth_causal_genes": str(config.truth_causal_genes)}
    return write_report(config.outdir, params)


# ----------------------------------------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class Step:
    """A step: its command name, configuration type and function (and whether it runs the predictor)."""

    name: str
    config: type
    run: Callable[..., Any]
    uses_predictor: bool = False


STEPS: dict[str, Step] = {step.name: step for step in (
    Step("check", CheckConfig, check),
    Step("loci", LociConfig, loci),
    Step("loci-union", LociUnionConfig, loci_union),
    Step("chunk", ChunkConfig, chunk),
    Step("select", SelectConfig, select),
    Step("sequence", SequenceConfig, sequence),
    Step("predict", PredictConfig, predict, uses_predictor=True),
    Step("merge-features", MergeFeaturesConfig, merge_features),
    Step("train", TrainConfig, train),
    Step("evaluate", EvaluateConfig, evaluate),
    Step("personalize", PersonalizeConfig, personalize, uses_predictor=True),
    Step("plan", PlanConfig, plan),
    Step("merge", MergeConfig, merge),
    Step("rescore", RescoreConfig, rescore),
    Step("accuracy", AccuracyConfig, accuracy),
    Step("precision-audit", PrecisionAuditConfig, precision_audit),
    Step("linearize", LinearizeConfig, linearize),
    Step("database", DatabaseConfig, database),
    Step("twas", TwasConfig, twas),
    Step("report", ReportConfig, report),
)}


def step_of(config: Any) -> Step:
    """The step a configuration belongs to."""
    for step in STEPS.values():
        if type(config) is step.config:
            return step
    raise TypeError(f"{type(config).__name__} is not a step configuration")


# ----------------------------------------------------------------------------------------------------------
# reference-panel covariance and S-MultiXcan


@dataclass(frozen=True)
class CovarianceConfig:
    """`enpact covariance`: the SNP covariance of databases' model SNPs (per gene, their union) across the
    individuals of a reference panel VCF."""

    model_db_path: tuple[Path, ...] = _path("input")
    vcf: Path = _path("input")
    out: Path = _path("output")
    snp_key: str = "varID"
    samples: tuple[str, ...] | None = None
    samples_file: Path | None = _path("input", None)


def covariance(config: CovarianceConfig) -> Path:
    """Match the model SNPs to the panel and write the covariance file."""
    from enpact.predictdb import write_panel_covariance

    return write_panel_covariance(list(config.model_db_path), config.vcf, config.out, config.snp_key,
                                  _samples(config))


@dataclass(frozen=True)
class MultixcanConfig(GwasOptions):
    """`enpact multixcan`: S-MultiXcan of the contexts' S-PrediXcan results (MetaXcan SMulTiXcan.py's method and
    columns); contexts given explicitly (`context_*`, one entry each) or found in a models and a results folder."""

    snp_covariance: Path = _path("input")
    output: Path = _path("output")
    context_names: tuple[str, ...] = ()
    context_dbs: tuple[Path, ...] = _path("input", ())
    context_results: tuple[Path, ...] = _path("input", ())
    models_folder: Path | None = _path("input", None)
    models_name_filter: tuple[str, ...] | None = None
    models_name_pattern: str | None = None
    metaxcan_folder: Path | None = _path("input", None)
    metaxcan_filter: tuple[str, ...] = (".*csv",)
    metaxcan_file_name_parse_pattern: str | None = None
    gwas_file: Path | None = _path("input", None)
    gwas_folder: Path | None = _path("input", None)
    gwas_file_pattern: str | None = None
    cleared_snps: Path | None = _path("input", None)
    cutoff_condition_number: float | None = None
    cutoff_eigen_ratio: float | None = None
    cutoff_threshold: float | None = None
    cutoff_trace_ratio: float | None = None
    regularization: float | None = None
    trimmed_ensemble_id: bool = False
    max_m: int | None = None
    qq_plot: Path | None = _path("output", None)


def _with_gwas_name(config: MultixcanConfig) -> MultixcanConfig:
    """`{gwas}` in the output, QQ plot and results paths replaced by the GWAS file's output name (the rule of
    `enpact twas`), so a pipeline task need not know it."""
    from dataclasses import replace as with_fields

    from enpact.layout import gwas_name

    paths = [config.output, config.qq_plot, *config.context_results]
    if not any("{gwas}" in str(p) for p in paths if p is not None):
        return config
    if config.gwas_file is None:
        raise EnpactError("{gwas} in a path needs --gwas-file (its name replaces {gwas})")
    name = gwas_name(config.gwas_file)
    named = lambda p: None if p is None else Path(str(p).replace("{gwas}", name))  # noqa: E731
    return with_fields(config, output=named(config.output), qq_plot=named(config.qq_plot),
                       context_results=tuple(named(p) for p in config.context_results))


def multixcan(config: MultixcanConfig) -> pd.DataFrame:
    """Run S-MultiXcan and write the results table (and the QQ plot)."""
    from enpact.multixcan import (
        Cutoff, MultixcanInputs, explicit_contexts, folder_contexts, gwas_folder_files, run_multixcan,
    )

    if not (len(config.context_names) == len(config.context_dbs) == len(config.context_results)):
        raise EnpactError("each --context needs a name, a model database and a results file")
    config = _with_gwas_name(config)
    folders = config.models_folder is not None or config.metaxcan_folder is not None
    if config.context_names and folders:
        raise EnpactError("give the contexts with --context, or with --models-folder and --metaxcan-folder, not both")
    if config.context_names:
        contexts = explicit_contexts(list(zip(config.context_names, config.context_dbs, config.context_results)))
    elif config.models_folder is not None and config.metaxcan_folder is not None:
        contexts = folder_contexts(config.models_folder, config.metaxcan_folder, config.models_name_filter,
                                   config.models_name_pattern, config.metaxcan_filter,
                                   config.metaxcan_file_name_parse_pattern)
    else:
        raise EnpactError("give the contexts: --context NAME DB RESULTS (repeated), or --models-folder with "
                          "--metaxcan-folder")
    if config.gwas_file is not None and config.gwas_folder is not None:
        raise EnpactError("give --gwas-file or --gwas-folder, not both")
    if config.max_m is not None and config.max_m < 1:
        raise EnpactError("--MAX-M must be at least 1")
    gwas_files = ([config.gwas_file] if config.gwas_file is not None
                  else gwas_folder_files(config.gwas_folder, config.gwas_file_pattern) if config.gwas_folder is not None
                  else [])
    columns = config.columns()
    cutoff = Cutoff.from_options(config.cutoff_condition_number, config.cutoff_eigen_ratio, config.cutoff_threshold,
                                 config.cutoff_trace_ratio)
    inputs = MultixcanInputs(contexts, config.snp_covariance, config.model_db_snp_key, config.trimmed_ensemble_id,
                             config.max_m)
    return run_multixcan(inputs, config.output, cutoff, config.regularization, gwas_files, columns,
                         config.cleared_snps, config.separator, config.keep_non_rsid, config.input_pvalue_fix,
                         config.qq_plot)


STEPS.update({step.name: step for step in (
    Step("covariance", CovarianceConfig, covariance),
    Step("multixcan", MultixcanConfig, multixcan),
)})
