"""`enpact run`: every pipeline step on one machine, chunked like the Nextflow pipeline, resumable.

The runner builds each step's configuration from the parameter file and calls the step function (enpact.steps),
the same function the `enpact <step>` command lines of the Nextflow modules call; it keeps one predictor loaded
for the steps that need it. A step is skipped when its outputs exist and its fingerprint (the configuration and the
content of its input files) matches the one recorded when it last completed, so an interrupted run resumes where
it stopped and a changed parameter redoes exactly the steps it affects.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enpact.checks import check_study, param_names
from enpact.errors import EnpactError
from enpact.io import atomic_path
from enpact.contexts import study_contexts
from enpact.layout import (ACCURACY_SUMMARY, ACCURACY_TABLE, ResultsLayout, database_name, gwas_name, gwas_names,
                           keeps_personalized)
from enpact.params import resolve_gwas_files, write_params
from enpact.versions import software_versions
from enpact.plan import read_plan
from enpact.steps import (AccuracyConfig, ChunkConfig, CovarianceConfig, DatabaseConfig, LinearizeConfig, LociConfig,
                          LociUnionConfig, MergeConfig, MultixcanConfig, PlanConfig, SelectConfig,
                          MergeFeaturesConfig, PersonalizeConfig, PredictConfig, PredictorConfig, ReportConfig,
                          TrainConfig, TwasConfig, fingerprinted, hyperparameter_pairs, report, roles, step_of)

log = logging.getLogger(__name__)


@dataclass
class StepCache:
    """Completed steps (fingerprint, and the seconds the step took when it ran), kept in pipeline_info/steps.json
    (written after every step)."""

    path: Path
    done: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "StepCache":
        """Read the cache, or start an empty one."""
        if path.exists():
            try:
                entries = json.loads(path.read_text())
                # caches of earlier versions hold the fingerprint alone
                return cls(path, {k: v if isinstance(v, dict) else {"fingerprint": v, "seconds": None}
                                  for k, v in entries.items()})
            except (json.JSONDecodeError, AttributeError):
                log.warning("%s is unreadable; recomputing every step", path)
        return cls(path)

    def is_done(self, key: str, fingerprint: str, outputs: Sequence[Path]) -> bool:
        """True when the step completed with this fingerprint and its outputs are still there."""
        return (self.done.get(key, {}).get("fingerprint") == fingerprint
                and all(Path(o).exists() for o in outputs))

    def seconds(self, key: str) -> float | None:
        """How long the step took when it ran."""
        return self.done.get(key, {}).get("seconds")

    def mark(self, key: str, fingerprint: str, seconds: float | None = None) -> None:
        """Record a completed step."""
        self.done[key] = {"fingerprint": fingerprint, "seconds": seconds}
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(self.done, indent=1, sort_keys=True))


HASHED_FILE_LIMIT = 16 * 2**20


def _file_stamp(path: Path) -> str:
    """Content hash of a small file, size and mtime of a large one; directories by their files."""
    if path.is_dir():
        return ",".join(f"{p.name}={_file_stamp(p)}" for p in sorted(path.rglob("*")) if p.is_file())
    if not path.is_file():
        return ""
    stat = path.stat()
    if stat.st_size <= HASHED_FILE_LIMIT:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def fingerprint(config: Any) -> str:
    """Hash of a step's configuration and of the content of the inputs it names (files, directories); outputs are
    named, not stamped."""
    digest = hashlib.sha256(step_of(config).name.encode() + b"\0")
    digest.update(json.dumps(fingerprinted(config), sort_keys=True).encode())
    for name, role in sorted(roles(config).items()):
        value = getattr(config, name)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and role == "input":
                digest.update(f"{name}\0{_file_stamp(Path(item))}\0".encode())
    return digest.hexdigest()[:20]


class Runner:
    """Runs steps in process, with resume, per-step timings and one predictor kept loaded."""

    def __init__(self, outdir: Path, progress: bool = True):
        self.layout = ResultsLayout(outdir)
        self.layout.pipeline_info.mkdir(parents=True, exist_ok=True)
        self.cache = StepCache.load(self.layout.steps_json)
        self.timings: list[tuple[str, str, float, str]] = []
        self.progress = progress
        self._predictors: dict[PredictorConfig, Any] = {}
        self._retired_predictor_seconds = 0.0

    def predictor(self, config: PredictorConfig) -> Any:
        """The predictor for these options, loaded once (one model on the device at a time)."""
        if config not in self._predictors:
            self._retired_predictor_seconds = self.predictor_seconds()
            self._predictors.clear()
            self._predictors[config] = config.load()
        return self._predictors[config]

    def predictor_seconds(self) -> float:
        """Seconds spent in predict() by this runner's predictors."""
        return self._retired_predictor_seconds + sum(getattr(p, "seconds", 0.0) for p in self._predictors.values())

    def step(self, group: str, key: str, config: Any, outputs: Sequence[Path]) -> bool:
        """Run the step of a configuration unless already done; returns True when it ran."""
        step = step_of(config)
        stamp = fingerprint(config)
        if self.cache.is_done(key, stamp, outputs):
            self.timings.append((group, key, self.cache.seconds(key) or 0.0, "cached"))
            return False
        log.info("[%s] %s", group, key)
        started = time.perf_counter()
        try:
            step.run(config, predictors=self.predictor) if step.uses_predictor else step.run(config)
        except EnpactError as err:   # the user wrote a parameter file, not these command lines
            raise EnpactError(param_names(str(err), step.name)) from None
        missing = [o for o in outputs if not Path(o).exists()]
        if missing:
            raise EnpactError(f"step {key} finished without writing {missing[0]}")
        seconds = time.perf_counter() - started
        self.cache.mark(key, stamp, seconds)
        self.timings.append((group, key, seconds, "ran"))
        return True

    def write_timings(self) -> Path:
        """pipeline_info/timings.tsv: one row per step, and seconds per step group."""
        path = self.layout.timings
        with atomic_path(path) as tmp:
            lines = ["group\tstep\tseconds\tstatus"]
            lines += [f"{g}\t{k}\t{s:.3f}\t{st}" for g, k, s, st in self.timings]
            tmp.write_text("\n".join(lines) + "\n")
        return path


def _write_text(path: Path, text: str) -> None:
    """Atomic small text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def remove_stale(directory: Path, patterns: Sequence[str], keep: Sequence[Path]) -> None:
    """Delete files an earlier run wrote under other chunk (or GWAS) names: later steps and the report read every
    file of these folders, and outputs of another chunking would be read twice."""
    wanted = {Path(p).resolve() for p in keep}
    stale = sorted({p for pattern in patterns for p in directory.glob(pattern)
                    if p.is_file() and p.resolve() not in wanted})
    for path in stale:
        path.unlink()
    if stale:
        log.info("%s: removed %d outputs of an earlier run that this run does not produce", directory, len(stale))


def _chunk_files(directory: Path, pattern: str) -> list[Path]:
    """Chunk files of a directory, sorted by name (the order is part of every later fingerprint)."""
    return sorted(directory.glob(pattern))


def predictor_config(params: dict) -> PredictorConfig:
    """The predictor the parameters describe."""
    return PredictorConfig(predictor=params["predictor"], weights=params["weights"], bins=int(params["bins"]),
                           aggregate=params["aggregate"], tracks=str(params["tracks"]),
                           batch_size=int(params["batch_size"]), device=params["device"],
                           precision=params["precision"], window_bp=int(params["window_bp"]) if params.get("window_bp")
                           else None, options=hyperparameter_pairs(params.get("predictor_options")))


def _optional(value: Any) -> Any:
    """An optional parameter: unset ('' or None) is None."""
    return None if value in (None, "") else value


def variant_options(params: dict) -> dict[str, Any]:
    """The variants personalization applies: all, or those linearization will use (its window and filters)."""
    if params.get("personalize_variants", "all") == "all":
        return {"variants": "all"}
    return dict(variants=params["personalize_variants"],
                lin_window_bp=int(params["lin_window_bp"]) if params.get("lin_window_bp") else None,
                maf=float(params["lin_maf"]), keep_indels=bool(params.get("lin_keep_indels")),
                keep_ambiguous=bool(params.get("lin_keep_ambiguous")),
                keep_multiallelic=bool(params.get("lin_keep_multiallelic")), require_rsid=params["snp_key"] == "rsid")


def selects_loci(params: dict) -> bool:
    """Whether only the loci near a trait's signal are personalized (lin_gwas_pvalue needs gwas: check_param_rules)."""
    return (params.get("lin_gwas_pvalue") is not None or bool(params.get("select_variants"))
            or bool(params.get("select_regions")))


def gwas_options(params: dict) -> dict[str, Any]:
    """How S-PrediXcan and S-MultiXcan read the GWAS files and key the models' SNPs (their shared options)."""
    return dict(snp_column=params["gwas_snp_column"], effect_allele_column=params["gwas_effect_allele_column"],
                non_effect_allele_column=params["gwas_non_effect_allele_column"],
                beta_column=_optional(params.get("gwas_beta_column")), se_column=_optional(params.get("gwas_se_column")),
                zscore_column=_optional(params.get("gwas_zscore_column")),
                pvalue_column=_optional(params.get("gwas_pvalue_column")),
                or_column=_optional(params.get("gwas_or_column")), model_db_snp_key=params["snp_key"],
                keep_non_rsid=bool(params.get("gwas_keep_non_rsid")))


def panel_covariance(params: dict, databases: tuple[Path, ...], out: Path) -> CovarianceConfig:
    """The SNP covariance of the databases' model SNPs: from the reference panel (covariance_vcf) when one is
    given, else from the linearization panel and its individuals."""
    if params.get("covariance_vcf"):
        return CovarianceConfig(model_db_path=databases, vcf=Path(params["covariance_vcf"]), out=out,
                                snp_key=params["snp_key"], samples_file=Path(params["covariance_samples"])
                                if params.get("covariance_samples") else None)
    return CovarianceConfig(model_db_path=databases, vcf=Path(params["vcf"]), out=out, snp_key=params["snp_key"],
                            samples_file=Path(params["samples"]) if params.get("samples") else None)


def run_pipeline(params: dict, progress: bool = True) -> dict[str, Path]:
    """Run loci -> reference -> train -> personalize -> linearize -> databases -> TWAS -> report."""
    check_study(params)   # what would otherwise be found hours of predictor time later; nothing written yet
    outdir = Path(params["outdir"])
    runner = Runner(outdir, progress)
    layout = runner.layout
    started = time.perf_counter()
    write_params(layout.params_json, params)
    _write_text(layout.software_versions, json.dumps(software_versions(), indent=2) + "\n")

    contexts = study_contexts(params)
    names = tuple(c.name for c in contexts if c.name is not None)

    # 1. loci (per context, then their union), and chunks of loci and samples
    for context in contexts:
        out = layout.context_loci(context.name)
        runner.step("loci", "loci" if context.name is None else f"loci/{context.name}", LociConfig(
            expression=context.expression, fasta=Path(params["fasta"]), out=out, annotation=context.annotation,
            annotation_format=context.annotation_format, train_chroms=_optional(params.get("train_chroms")),
            valid_chroms=_optional(params.get("valid_chroms")), test_chroms=_optional(params.get("test_chroms")),
            gene_types=_optional(params.get("gene_types"))), [out])
    if names:
        runner.step("loci", "loci/union", LociUnionConfig(
            loci=tuple(layout.context_loci(n) for n in names), contexts=names, out=layout.loci), [layout.loci])
    runner.step("loci", "chunk", ChunkConfig(
        loci=layout.loci, outdir=layout.chunks, loci_per_chunk=int(params["loci_per_chunk"]),
        samples_per_chunk=int(params["samples_per_chunk"]),
        vcf=None if params.get("samples") else Path(params["vcf"]),
        samples_file=Path(params["samples"]) if params.get("samples") else None), [layout.loci_chunks])
    loci_chunks = _chunk_files(layout.loci_chunks, "*.tsv")

    # 2. reference features per loci chunk (the union of the contexts' loci), merged
    remove_stale(layout.reference_chunks, ["*.h5"], [layout.reference_chunk(c.stem) for c in loci_chunks])
    predictor = predictor_config(params)
    for chunk in loci_chunks:
        part = layout.reference_chunk(chunk.stem)
        runner.step("reference", f"reference/{chunk.stem}", PredictConfig(
            fasta=Path(params["fasta"]), loci=chunk, out=part, predictor=predictor, progress=progress), [part])
    parts = tuple(layout.reference_chunk(c.stem) for c in loci_chunks)
    runner.step("reference", "reference/merge", MergeFeaturesConfig(inputs=parts, out=layout.reference),
                [layout.reference])

    # 2b. the loci to personalize: all, or those near the trait's signal (training keeps every locus)
    gwas_files = resolve_gwas_files(params.get("gwas"))
    personal_chunks = loci_chunks
    if selects_loci(params):
        runner.step("loci", "select", SelectConfig(
            loci=layout.loci, out=layout.selected_loci, chunks=layout.selected_chunks,
            loci_per_chunk=int(params["loci_per_chunk"]), features=layout.reference,
            window_bp=int(params["lin_window_bp"]) if params.get("lin_window_bp") else None,
            gwas=Path(gwas_files[0]) if params.get("lin_gwas_pvalue") is not None else None,
            gwas_snp_column=params["gwas_snp_column"], gwas_pvalue_column=params["gwas_pvalue_column"],
            gwas_pvalue_threshold=float(params["lin_gwas_pvalue"]) if params.get("lin_gwas_pvalue") is not None
            else 5e-8, credible_sets=Path(params["select_variants"]) if params.get("select_variants") else None,
            regions=Path(params["select_regions"]) if params.get("select_regions") else None),
            [layout.selected_loci])
        personal_chunks = _chunk_files(layout.selected_chunks, "*.tsv")

    # 3. one EnPACT model per context, evaluated on held-out chromosomes
    for context in contexts:
        model = layout.context_model(context.name)
        runner.step("model", "train" if context.name is None else f"train/{context.name}", TrainConfig(
            features=layout.reference, loci=layout.context_loci(context.name), expression=context.expression,
            outdir=model, model_type=params["model_type"], folds=int(params["model_folds"]), seed=int(params["seed"]),
            device=params["device"], baseline_track=_optional(params.get("baseline_track")),
            hyperparameters=hyperparameter_pairs(params.get("model_hyperparameters"))),
            [model / "model.json", model / "metrics.json"])

    # 4. personalized predictions: per loci chunk, a plan of its distinct windows over every individual, its parts
    #    predicted (the predictor once per distinct window, every context's model applied), and assembled
    samples_file = Path(params["samples"]) if params.get("samples") else None
    plans = {chunk.stem: layout.plan(chunk.stem) for chunk in personal_chunks}
    remove_stale(layout.plans, ["*.h5", "*.parts"], [p for plan in plans.values()
                                                     for p in (plan, plan.with_suffix(".parts"))])
    remove_stale(layout.personalized, ["*.h5"], [layout.personalized_store(c.stem) for c in personal_chunks])
    models = tuple(layout.context_model(c.name) for c in contexts)
    pieces_kept = []
    for chunk in personal_chunks:
        plan_file = plans[chunk.stem]
        runner.step("personalize", f"plan/{chunk.stem}", PlanConfig(
            fasta=Path(params["fasta"]), loci=chunk, vcf=Path(params["vcf"]), out=plan_file,
            parts_file=plan_file.with_suffix(".parts"), features=layout.reference, samples_file=samples_file,
            windows_per_part=int(params["windows_per_part"]), allow_unphased=bool(params.get("allow_unphased")),
            panel_samples_file=samples_file, **variant_options(params)), [plan_file])
        pieces = tuple(layout.personalized_part(chunk.stem, k) for k in range(read_plan(plan_file).n_parts))
        pieces_kept += pieces
        for k, piece in enumerate(pieces):
            runner.step("personalize", f"personalize/{chunk.stem}/part{k}", PersonalizeConfig(
                fasta=Path(params["fasta"]), loci=chunk, vcf=Path(params["vcf"]), model=models, contexts=names,
                out=piece, weights=params["weights"], batch_size=int(params["batch_size"]),
                device=params["device"], precision=params["precision"],
                allow_unphased=bool(params.get("allow_unphased")),
                allow_precision_mismatch=bool(params.get("allow_precision_mismatch")),
                save_features=bool(params.get("save_features")), panel_samples_file=samples_file,
                **variant_options(params), plan=plan_file, part=k, progress=progress), [piece])
        store = layout.personalized_store(chunk.stem)
        runner.step("personalize", f"merge/{chunk.stem}", MergeConfig(inputs=pieces, out=store, plan=plan_file),
                    [store])
    remove_stale(layout.personalized / "chunks", ["*.h5"], pieces_kept)

    for context in contexts:
        folder = layout.context_accuracy(context.name)
        runner.step("personalize", "accuracy" if context.name is None else f"accuracy/{context.name}",
                    AccuracyConfig(personalized=tuple(layout.personalized_store(c.stem) for c in personal_chunks),
                                   expression=context.expression, outdir=folder, context=context.name,
                                   seed=int(params["seed"])),
                    [folder / ACCURACY_TABLE, folder / ACCURACY_SUMMARY])

    # 5. linearization per context x loci chunk, then each context's databases
    name = params["name"]
    linearized = {c.name: [layout.linearized_chunk(chunk.stem, c.name) for chunk in personal_chunks] for c in contexts}
    remove_stale(layout.linearized / "chunks", ["*.h5", "*/*.h5", "*.summary.tsv", "*.weights.tsv",
                                                "*.covariance.tsv.gz"], [p for ps in linearized.values() for p in ps])
    outputs: list[Path] = []
    for context in contexts:
        for chunk, out in zip(personal_chunks, linearized[context.name]):   # a chunk without the context's loci: empty
            runner.step("linearize", f"linearize/{chunk.stem}" if context.name is None else
                        f"linearize/{context.name}/{chunk.stem}", LinearizeConfig(
                personalized=layout.personalized_store(chunk.stem), vcf=Path(params["vcf"]), loci=chunk,
                out=out, context=context.name,
                window_bp=int(params["lin_window_bp"]) if params.get("lin_window_bp") else None,
                maf=float(params["lin_maf"]), keep_indels=bool(params.get("lin_keep_indels")),
                keep_ambiguous=bool(params.get("lin_keep_ambiguous")),
                keep_multiallelic=bool(params.get("lin_keep_multiallelic")), require_rsid=params["snp_key"] == "rsid",
                build=params["build"], folds=int(params["lin_folds"]), alpha=float(params["lin_alpha"]),
                seed=int(params["seed"]), min_snps=int(params["lin_min_snps"]),
                progress=progress), [out])
        db_name = database_name(name, context.name)
        databases = [layout.database(db_name), layout.covariance(db_name), layout.linearization_summary(db_name)]
        if params.get("keep_unfiltered"):
            databases += [layout.unfiltered_database(db_name), layout.unfiltered_covariance(db_name)]
        outputs += databases
        runner.step("databases", "database" if context.name is None else f"database/{context.name}",
                    DatabaseConfig(
            linearized=tuple(linearized[context.name]), name=db_name, outdir=layout.linearized,
            snp_key=params["snp_key"], pval_threshold=float(params["db_pval_threshold"]),
            rho_threshold=float(params["db_rho_threshold"]), keep_unfiltered=bool(params.get("keep_unfiltered")),
            population=_optional(params.get("population")), cv_seed=int(params["seed"]),
            allow_empty=bool(params.get("allow_empty_results"))), databases)
        if params.get("covariance_vcf"):   # the SNP covariance S-PrediXcan reads, from a reference panel
            panel = layout.panel_covariance(db_name)
            outputs.append(panel)
            runner.step("databases", "covariance" if context.name is None else f"covariance/{context.name}",
                        panel_covariance(params, (layout.database(db_name),), panel), [panel])
    remove_stale(layout.linearized, ["*.db", "*.txt.gz", "*.summary.tsv"], outputs)
    if not keeps_personalized(params):
        for path in sorted([*layout.personalized.rglob("*.h5"), *layout.plans.glob("*.parts")]):
            path.unlink()
        log.info("deleted the personalized prediction stores (delete_personalized)")

    # 6. S-PrediXcan per context x GWAS file
    stems = gwas_names(gwas_files)
    tables = [p for c in contexts for stem in stems
              for p in (layout.twas_table(stem, c.name), *layout.twas_plots(stem, c.name))]
    remove_stale(layout.twas, ["*.csv", "*.qq.png", "*.manhattan.png", "*/*.csv", "*/*.png"], tables)
    for context in contexts:
        db_name = database_name(name, context.name)
        covariance = layout.panel_covariance(db_name) if params.get("covariance_vcf") else layout.covariance(db_name)
        # one GWAS file per step; the contexts of a run of several take them all in one step (a folder each)
        batches = ([((Path(g),), stem) for g, stem in zip(gwas_files, stems)] if context.name is None
                   else [(tuple(Path(g) for g in gwas_files), "{gwas}")] if gwas_files else [])
        for batch, stem in batches:
            runner.step("twas", f"twas/{stem}" if context.name is None else f"twas/{context.name}", TwasConfig(
                model_db_path=layout.database(db_name), covariance=covariance, gwas_file=batch,
                output_file=str(layout.twas_table(stem, context.name)), **gwas_options(params),
                plots_prefix=str(layout.twas_plots_prefix(stem, context.name)),
                allow_empty=bool(params.get("allow_empty_results"))),
                [layout.twas_table(gwas_name(g), context.name) for g in batch])

    # 7. S-MultiXcan per GWAS across the contexts, on the joint SNP covariance of their models
    remove_stale(layout.multixcan, ["*.tsv", "*.png", "*.txt.gz"],
                 [layout.multixcan_covariance] + [p for stem in stems for p in (layout.multixcan_table(stem),
                                                                                layout.multixcan_qq(stem))]
                 if names and gwas_files else [])
    if names and gwas_files:
        dbs = tuple(layout.database(database_name(name, n)) for n in names)
        runner.step("multixcan", "multixcan/covariance", panel_covariance(params, dbs, layout.multixcan_covariance),
                    [layout.multixcan_covariance])
        for gwas, stem in zip(gwas_files, stems):
            out = layout.multixcan_table(stem)
            runner.step("multixcan", f"multixcan/{stem}", MultixcanConfig(
                snp_covariance=layout.multixcan_covariance, output=out, context_names=names, context_dbs=dbs,
                context_results=tuple(layout.twas_table(stem, n) for n in names),
                gwas_file=Path(gwas), **gwas_options(params), qq_plot=layout.multixcan_qq(stem)), [out])

    # 8. report
    runner.timings.append(("predictor", "predictor (inside reference and personalize)", runner.predictor_seconds(),
                           "ran"))
    runner.timings.append(("total", "total", time.perf_counter() - started, "ran"))
    runner.write_timings()
    report(ReportConfig(outdir=outdir), params)
    databases = [layout.database(database_name(name, c.name)) for c in contexts]
    return {"outdir": outdir, "report": layout.report_html, "databases": databases,
            "covariances": [db.with_suffix(".txt.gz") for db in databases], "twas": layout.twas}
