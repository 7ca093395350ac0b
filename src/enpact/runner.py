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
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enpact import __version__
from enpact.checks import check_study, param_names
from enpact.errors import EnpactError
from enpact.io import atomic_path
from enpact.layout import ResultsLayout, gwas_names, keeps_personalized
from enpact.params import resolve_gwas_files, write_params
from enpact.steps import (AccuracyConfig, ChunkConfig, DatabaseConfig, LinearizeConfig, LociConfig, MergeConfig,
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


KEY_PACKAGES = ("torch", "enformer-pytorch", "numpy", "pandas", "scipy", "scikit-learn", "h5py", "pysam", "pyfaidx",
                "numba", "polars")


def software_versions(*packages: str) -> dict[str, str]:
    """Versions of enpact, Python and the key libraries (or of the named installed packages)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"enpact": __version__, "python": platform.python_version()}
    for package in packages or KEY_PACKAGES:
        if package in versions:
            continue
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


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


def run_pipeline(params: dict, progress: bool = True) -> dict[str, Path]:
    """Run loci -> reference -> train -> personalize -> linearize -> databases -> TWAS -> report."""
    check_study(params)   # what would otherwise be found hours of predictor time later; nothing written yet
    outdir = Path(params["outdir"])
    runner = Runner(outdir, progress)
    layout = runner.layout
    started = time.perf_counter()
    write_params(layout.params_json, params)
    _write_text(layout.software_versions, json.dumps(software_versions(), indent=2) + "\n")

    # 1. loci, and chunks of loci and samples
    runner.step("loci", "loci", LociConfig(
        expression=Path(params["expression"]), fasta=Path(params["fasta"]), out=layout.loci,
        annotation=Path(params["annotation"]) if params.get("annotation") else None,
        annotation_format=params["annotation_format"], train_chroms=_optional(params.get("train_chroms")),
        valid_chroms=_optional(params.get("valid_chroms")), test_chroms=_optional(params.get("test_chroms")),
        gene_types=_optional(params.get("gene_types"))), [layout.loci])
    runner.step("loci", "chunk", ChunkConfig(
        loci=layout.loci, outdir=layout.chunks, loci_per_chunk=int(params["loci_per_chunk"]),
        samples_per_chunk=int(params["samples_per_chunk"]),
        vcf=None if params.get("samples") else Path(params["vcf"]),
        samples_file=Path(params["samples"]) if params.get("samples") else None), [layout.loci_chunks])
    loci_chunks = _chunk_files(layout.loci_chunks, "*.tsv")
    sample_chunks = _chunk_files(layout.sample_chunks, "*.txt")

    # 2. reference features per loci chunk, merged
    remove_stale(layout.reference_chunks, ["*.h5"], [layout.reference_chunk(c.stem) for c in loci_chunks])
    predictor = predictor_config(params)
    for chunk in loci_chunks:
        part = layout.reference_chunk(chunk.stem)
        runner.step("reference", f"reference/{chunk.stem}", PredictConfig(
            fasta=Path(params["fasta"]), loci=chunk, out=part, predictor=predictor, progress=progress), [part])
    parts = tuple(layout.reference_chunk(c.stem) for c in loci_chunks)
    runner.step("reference", "reference/merge", MergeFeaturesConfig(inputs=parts, out=layout.reference),
                [layout.reference])

    # 3. EnPACT model, evaluated on held-out chromosomes
    runner.step("model", "train", TrainConfig(
        features=layout.reference, loci=layout.loci, expression=Path(params["expression"]), outdir=layout.model,
        model_type=params["model_type"], folds=int(params["model_folds"]), seed=int(params["seed"]),
        device=params["device"], baseline_track=_optional(params.get("baseline_track")),
        hyperparameters=hyperparameter_pairs(params.get("model_hyperparameters"))),
        [layout.model_json, layout.metrics])

    # 4. personalized predictions: loci chunk x sample chunk, merged per loci chunk
    remove_stale(layout.personalized / "chunks", ["*.h5"], [layout.personalized_chunk(c.stem, s.stem)
                                                           for c in loci_chunks for s in sample_chunks])
    remove_stale(layout.personalized, ["*.h5"], [layout.personalized_store(c.stem) for c in loci_chunks])
    for chunk in loci_chunks:
        for samples in sample_chunks:
            piece = layout.personalized_chunk(chunk.stem, samples.stem)
            runner.step("personalize", f"personalize/{chunk.stem}/{samples.stem}", PersonalizeConfig(
                fasta=Path(params["fasta"]), loci=chunk, vcf=Path(params["vcf"]), model=layout.model, out=piece,
                samples_file=samples, weights=params["weights"], batch_size=int(params["batch_size"]),
                device=params["device"], precision=params["precision"],
                allow_unphased=bool(params.get("allow_unphased")),
                allow_precision_mismatch=bool(params.get("allow_precision_mismatch")),
                save_features=bool(params.get("save_features")), progress=progress), [piece])
        store = layout.personalized_store(chunk.stem)
        pieces = tuple(layout.personalized_chunk(chunk.stem, s.stem) for s in sample_chunks)
        runner.step("personalize", f"merge/{chunk.stem}", MergeConfig(inputs=pieces, out=store), [store])

    runner.step("personalize", "accuracy", AccuracyConfig(
        personalized=tuple(layout.personalized_store(c.stem) for c in loci_chunks),
        expression=Path(params["expression"]), outdir=layout.accuracy, seed=int(params["seed"])),
        [layout.accuracy_table, layout.accuracy_summary])

    # 5. linearization per loci chunk, then the databases
    remove_stale(layout.linearized / "chunks", ["*.h5", "*.summary.tsv", "*.weights.tsv", "*.covariance.tsv.gz"],
                 [layout.linearized_chunk(c.stem) for c in loci_chunks])
    gwas_files = resolve_gwas_files(params.get("gwas"))
    selecting = params.get("lin_gwas_pvalue") is not None   # needs gwas: check_param_rules
    for chunk in loci_chunks:
        runner.step("linearize", f"linearize/{chunk.stem}", LinearizeConfig(
            personalized=layout.personalized_store(chunk.stem), vcf=Path(params["vcf"]), loci=chunk,
            out=layout.linearized_chunk(chunk.stem),
            window_bp=int(params["lin_window_bp"]) if params.get("lin_window_bp") else None,
            maf=float(params["lin_maf"]), keep_indels=bool(params.get("lin_keep_indels")),
            keep_ambiguous=bool(params.get("lin_keep_ambiguous")),
            keep_multiallelic=bool(params.get("lin_keep_multiallelic")), require_rsid=params["snp_key"] == "rsid",
            build=params["build"], folds=int(params["lin_folds"]), alpha=float(params["lin_alpha"]),
            seed=int(params["seed"]), min_snps=int(params["lin_min_snps"]),
            gwas=Path(gwas_files[0]) if selecting else None,
            gwas_snp_column=params["gwas_snp_column"] if selecting else "variant_id",
            gwas_pvalue_column=params["gwas_pvalue_column"] if selecting else "pvalue",
            gwas_pvalue_threshold=float(params["lin_gwas_pvalue"]) if selecting else 5e-8,
            progress=progress), [layout.linearized_chunk(chunk.stem)])
    name = params["name"]
    databases = [layout.database(name), layout.covariance(name), layout.linearization_summary(name)]
    if params.get("keep_unfiltered"):
        databases += [layout.unfiltered_database(name), layout.unfiltered_covariance(name)]
    remove_stale(layout.linearized, ["*.db", "*.txt.gz", "*.summary.tsv"], databases)
    runner.step("databases", "database", DatabaseConfig(
        linearized=tuple(layout.linearized_chunk(c.stem) for c in loci_chunks), name=name, outdir=layout.linearized,
        snp_key=params["snp_key"], pval_threshold=float(params["db_pval_threshold"]),
        rho_threshold=float(params["db_rho_threshold"]), keep_unfiltered=bool(params.get("keep_unfiltered")),
        population=_optional(params.get("population")), cv_seed=int(params["seed"]),
        allow_empty=bool(params.get("allow_empty_results"))), databases)
    if not keeps_personalized(params):
        for path in sorted(layout.personalized.rglob("*.h5")):
            path.unlink()
        log.info("deleted the personalized prediction stores (delete_personalized)")

    # 6. TWAS per GWAS file
    names = gwas_names(gwas_files)
    remove_stale(layout.twas, ["*.csv", "*.qq.png", "*.manhattan.png"],
                 [p for stem in names for p in (layout.twas_table(stem), *layout.twas_plots(stem))])
    for gwas, stem in zip(gwas_files, names):
        out = layout.twas_table(stem)
        runner.step("twas", f"twas/{stem}", TwasConfig(
            model_db_path=layout.database(name), covariance=layout.covariance(name), gwas_file=(Path(gwas),),
            output_file=str(out), snp_column=params["gwas_snp_column"],
            effect_allele_column=params["gwas_effect_allele_column"],
            non_effect_allele_column=params["gwas_non_effect_allele_column"],
            beta_column=_optional(params.get("gwas_beta_column")), se_column=_optional(params.get("gwas_se_column")),
            zscore_column=_optional(params.get("gwas_zscore_column")),
            pvalue_column=_optional(params.get("gwas_pvalue_column")),
            or_column=_optional(params.get("gwas_or_column")), model_db_snp_key=params["snp_key"],
            keep_non_rsid=bool(params.get("gwas_keep_non_rsid")), plots_prefix=str(layout.twas_plots_prefix(stem)),
            allow_empty=bool(params.get("allow_empty_results"))), [out])

    # 7. report
    runner.timings.append(("predictor", "predictor (inside reference and personalize)", runner.predictor_seconds(),
                           "ran"))
    runner.timings.append(("total", "total", time.perf_counter() - started, "ran"))
    runner.write_timings()
    report(ReportConfig(outdir=outdir), params)
    return {"outdir": outdir, "report": layout.report_html, "database": layout.database(name),
            "covariance": layout.covariance(name), "twas": layout.twas}
