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
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enpact.checks import check_device, check_study, param_names
from enpact.contexts import Context, study_contexts
from enpact.errors import EnpactError
from enpact.io import atomic_path
from enpact.layout import (ACCURACY_SUMMARY, ACCURACY_TABLE, ResultsLayout, database_name, gwas_name, gwas_names,
                           keeps_personalized)
from enpact.options import from_params
from enpact.params import resolve_gwas_files, write_params
from enpact.plan import read_plan
from enpact.steps import (AccuracyConfig, ChunkConfig, CovarianceConfig, DatabaseConfig, FinemapConfig,
                          LinearizeConfig, LociConfig, LociUnionConfig, MergeConfig, MergeFeaturesConfig,
                          MultixcanConfig, PersonalizeConfig,
                          PlanConfig, PredictConfig, PredictorConfig, ReportConfig, SelectConfig, TrainConfig,
                          TwasConfig, fingerprinted, report, roles, step_of)
from enpact.versions import software_versions

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


REMEMBERED_HASH_SIZE = 16 * 2**20   # a file at least this large has its content hash remembered between runs
HASH_BLOCK = 8 * 2**20


class ContentStamps:
    """Content hashes of the files steps read. A large file's hash is remembered (pipeline_info/input_hashes.json)
    with its size, modification time, inode and device, and recomputed only when one of those changes: a 3 GB
    FASTA is read once, not on every run, and touching or copying an input that did not change reruns nothing."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.known: dict[str, list] = {}
        self.changed = False
        if path is not None and path.exists():
            try:
                self.known = json.loads(path.read_text())
            except (json.JSONDecodeError, OSError):
                log.warning("%s is unreadable; input files are hashed again", path)

    def stamp(self, path: Path) -> str:
        """The content hash of a file; of a directory, its files' names and hashes; '' for no file."""
        if path.is_dir():
            return ",".join(f"{p.name}={self.stamp(p)}" for p in sorted(path.rglob("*")) if p.is_file())
        if not path.is_file():
            return ""
        stat = path.stat()
        identity = [stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev]
        key = str(path.resolve())
        remembered = self.known.get(key)
        if remembered and remembered[0] == identity:
            return remembered[1]
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(HASH_BLOCK):
                digest.update(block)
        value = digest.hexdigest()[:16]
        if stat.st_size >= REMEMBERED_HASH_SIZE:
            self.known[key] = [identity, value]
            self.changed = True
        return value

    def save(self) -> None:
        """Write the remembered hashes, when a new one was computed."""
        if self.path is not None and self.changed:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(self.known, indent=1, sort_keys=True))
            self.changed = False


def _relative_to(value: Any, root: str) -> Any:
    """Paths under the results folder written relative to it, in plain configuration values."""
    if isinstance(value, dict):
        return {k: _relative_to(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative_to(v, root) for v in value]
    if isinstance(value, str) and (value == root or value.startswith(root + "/")):
        return "<outdir>" + value[len(root):]
    return value


def fingerprint(config: Any, root: Path | None = None, stamps: ContentStamps | None = None) -> str:
    """Hash of a step's configuration and of the content of the inputs it names (files, directories); outputs are
    named, not stamped. Paths under `root` (the results folder) count relative to it, so a results folder moved or
    copied elsewhere (cp -a) resumes."""
    stamps = stamps or ContentStamps()
    values = fingerprinted(config)
    if root is not None:
        values = _relative_to(values, str(root))
    digest = hashlib.sha256(step_of(config).name.encode() + b"\0")
    digest.update(json.dumps(values, sort_keys=True).encode())
    for name, role in sorted(roles(config).items()):
        value = getattr(config, name)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and role == "input":
                digest.update(f"{name}\0{stamps.stamp(Path(item))}\0".encode())
    return digest.hexdigest()[:20]


class Runner:
    """Runs steps in process, with resume, per-step timings and one predictor kept loaded."""

    def __init__(self, outdir: Path, progress: bool = True):
        self.layout = ResultsLayout(outdir)
        self.layout.pipeline_info.mkdir(parents=True, exist_ok=True)
        self.cache = StepCache.load(self.layout.steps_json)
        self.stamps = ContentStamps(self.layout.input_hashes)
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
        stamp = fingerprint(config, self.layout.root, self.stamps)
        self.stamps.save()
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


def selects_loci(params: dict) -> bool:
    """Whether only the loci near a trait's signal are personalized (lin_gwas_pvalue needs gwas: check_param_rules)."""
    return (params.get("lin_gwas_pvalue") is not None or bool(params.get("select_variants"))
            or bool(params.get("select_regions")))


def ld_panel(params: dict) -> tuple[Path, Path | None]:
    """The panel of the SNP covariance and LD, and its sample list: the reference panel (covariance_vcf) when one is
    given, else the linearization panel and its individuals."""
    vcf, samples = (("covariance_vcf", "covariance_samples") if params.get("covariance_vcf") else ("vcf", "samples"))
    return Path(params[vcf]), Path(params[samples]) if params.get(samples) else None


def panel_covariance(params: dict, databases: tuple[Path, ...], out: Path) -> CovarianceConfig:
    """The SNP covariance of the databases' model SNPs, from the LD panel (ld_panel)."""
    vcf, samples_file = ld_panel(params)
    return from_params(CovarianceConfig, params, model_db_path=databases, vcf=vcf, out=out,
                       samples_file=samples_file)


class Pipeline:
    """One run of every step on this machine: the phases of `run_pipeline`, in order, over one results layout.
    Each phase builds its steps' configurations from the parameters (enpact.options.from_params), naming only the
    files and chunks of this layout."""

    def __init__(self, params: dict, progress: bool):
        self.params = params
        self.progress = progress
        self.outdir = Path(params["outdir"])
        self.runner = Runner(self.outdir, progress)
        self.layout = self.runner.layout
        self.contexts: list[Context] = study_contexts(params)
        self.names = tuple(c.name for c in self.contexts if c.name is not None)
        self.gwas_files = [Path(g) for g in resolve_gwas_files(params.get("gwas"))]
        self.gwas_stems = gwas_names(self.gwas_files)
        self.started = time.perf_counter()

    def step(self, group: str, key: str, config_type: type, outputs: Sequence[Path], **given: Any) -> bool:
        """Run one step, its configuration from the parameters and the `given` files."""
        return self.runner.step(group, key, from_params(config_type, self.params, **given), outputs)

    @staticmethod
    def key(step: str, context: str | None, *rest: str) -> str:
        """A step's key in the cache and timings: step[/context][/chunk...]."""
        return "/".join([step, *([context] if context else []), *rest])

    def start(self) -> None:
        """pipeline_info/: the parameters and software versions of the run."""
        write_params(self.layout.params_json, self.params)
        _write_text(self.layout.software_versions, json.dumps(software_versions(), indent=2) + "\n")

    def loci(self) -> list[Path]:
        """Loci per context (then their union), in chunks."""
        for context in self.contexts:
            out = self.layout.context_loci(context.name)
            self.step("loci", self.key("loci", context.name), LociConfig, [out], expression=context.expression,
                      out=out, annotation=context.annotation, annotation_format=context.annotation_format)
        if self.names:
            self.step("loci", "loci/union", LociUnionConfig, [self.layout.loci], contexts=self.names,
                      loci=tuple(self.layout.context_loci(n) for n in self.names), out=self.layout.loci)
        self.step("loci", "chunk", ChunkConfig, [self.layout.loci_chunks], loci=self.layout.loci,
                  outdir=self.layout.loci_chunks)
        return _chunk_files(self.layout.loci_chunks, "*.tsv")

    def reference(self, chunks: list[Path]) -> None:
        """Reference features per loci chunk (the union of the contexts' loci), merged."""
        parts = tuple(self.layout.reference_chunk(c.stem) for c in chunks)
        remove_stale(self.layout.reference_chunks, ["*.h5"], parts)
        for chunk, part in zip(chunks, parts):
            self.step("reference", f"reference/{chunk.stem}", PredictConfig, [part], loci=chunk, out=part,
                      progress=self.progress)
        self.step("reference", "reference/merge", MergeFeaturesConfig, [self.layout.reference], inputs=parts,
                  out=self.layout.reference)

    def selection(self, chunks: list[Path]) -> list[Path]:
        """The chunks of loci to personalize: all, or those near the trait's signal (training keeps every locus)."""
        if not selects_loci(self.params):
            return chunks
        gwas = self.gwas_files[0] if self.params.get("lin_gwas_pvalue") is not None else None
        self.step("loci", "select", SelectConfig, [self.layout.selected_loci], loci=self.layout.loci,
                  out=self.layout.selected_loci, chunks=self.layout.selected_chunks, features=self.layout.reference,
                  gwas=gwas)
        return _chunk_files(self.layout.selected_chunks, "*.tsv")

    def models(self) -> None:
        """One EnPACT model per context, evaluated on held-out chromosomes."""
        for context in self.contexts:
            model = self.layout.context_model(context.name)
            self.step("model", self.key("train", context.name), TrainConfig, [model / "model.json",
                      model / "metrics.json"], features=self.layout.reference,
                      loci=self.layout.context_loci(context.name), expression=context.expression, outdir=model)

    def personalize(self, chunks: list[Path]) -> None:
        """Per loci chunk: a plan of its distinct windows over every individual, its parts predicted (the predictor
        once per distinct window, every context's model applied), assembled into the chunk's store."""
        layout = self.layout
        plans = {chunk.stem: layout.plan(chunk.stem) for chunk in chunks}
        remove_stale(layout.plans, ["*.h5", "*.parts"], [p for plan in plans.values()
                                                         for p in (plan, plan.with_suffix(".parts"))])
        remove_stale(layout.personalized, ["*.h5"], [layout.personalized_store(c.stem) for c in chunks])
        models = tuple(layout.context_model(c.name) for c in self.contexts)
        pieces_kept: list[Path] = []
        for chunk in chunks:
            plan = plans[chunk.stem]
            self.step("personalize", f"plan/{chunk.stem}", PlanConfig, [plan], loci=chunk, out=plan,
                      parts_file=plan.with_suffix(".parts"), features=layout.reference)
            pieces = tuple(layout.personalized_part(chunk.stem, k) for k in range(read_plan(plan).n_parts))
            pieces_kept += pieces
            for k, piece in enumerate(pieces):
                self.step("personalize", f"personalize/{chunk.stem}/part{k}", PersonalizeConfig, [piece], loci=chunk,
                          plan=plan, part=k, model=models, contexts=self.names, out=piece, progress=self.progress)
            store = layout.personalized_store(chunk.stem)
            self.step("personalize", f"merge/{chunk.stem}", MergeConfig, [store], inputs=pieces, plan=plan, out=store)
        remove_stale(layout.personalized / "chunks", ["*.h5"], pieces_kept)

    def accuracy(self, chunks: list[Path]) -> None:
        """Personalized predictions against each context's observed values."""
        stores = tuple(self.layout.personalized_store(c.stem) for c in chunks)
        for context in self.contexts:
            folder = self.layout.context_accuracy(context.name)
            self.step("personalize", self.key("accuracy", context.name), AccuracyConfig,
                      [folder / ACCURACY_TABLE, folder / ACCURACY_SUMMARY], personalized=stores,
                      expression=context.expression, outdir=folder, context=context.name)

    def linearize(self, chunks: list[Path]) -> None:
        """Linearization per context x loci chunk, then each context's databases (and reference-panel covariance);
        the personalized stores deleted afterwards unless kept."""
        layout, params = self.layout, self.params
        linearized = {c.name: [layout.linearized_chunk(chunk.stem, c.name) for chunk in chunks]
                      for c in self.contexts}
        remove_stale(layout.linearized / "chunks", ["*.h5", "*/*.h5", "*.summary.tsv", "*.weights.tsv",
                                                    "*.covariance.tsv.gz"], [p for ps in linearized.values() for p in ps])
        outputs: list[Path] = []
        for context in self.contexts:
            for chunk, out in zip(chunks, linearized[context.name]):   # a chunk without the context's loci: empty
                self.step("linearize", self.key("linearize", context.name, chunk.stem), LinearizeConfig, [out],
                          personalized=layout.personalized_store(chunk.stem), loci=chunk, out=out,
                          context=context.name, progress=self.progress)
            name = database_name(params["name"], context.name)
            databases = [layout.database(name), layout.covariance(name), layout.linearization_summary(name)]
            if params.get("keep_unfiltered"):
                databases += [layout.unfiltered_database(name), layout.unfiltered_covariance(name)]
            outputs += databases
            self.step("databases", self.key("database", context.name), DatabaseConfig, databases,
                      linearized=tuple(linearized[context.name]), name=name, outdir=layout.linearized)
            if params.get("covariance_vcf"):   # the SNP covariance S-PrediXcan reads, from a reference panel
                panel = layout.panel_covariance(name)
                outputs.append(panel)
                self.runner.step("databases", self.key("covariance", context.name),
                                 panel_covariance(params, (layout.database(name),), panel), [panel])
        remove_stale(layout.linearized, ["*.db", "*.txt.gz", "*.summary.tsv"], outputs)
        if not keeps_personalized(params):
            for path in sorted([*layout.personalized.rglob("*.h5"), *layout.plans.glob("*.parts")]):
                path.unlink()
            log.info("deleted the personalized prediction stores (delete_personalized)")

    def twas(self) -> None:
        """S-PrediXcan per context x GWAS file (a context of several takes every GWAS file in one step)."""
        layout = self.layout
        tables = [p for c in self.contexts for stem in self.gwas_stems
                  for p in (layout.twas_table(stem, c.name), *layout.twas_plots(stem, c.name))]
        remove_stale(layout.twas, ["*.csv", "*.qq.png", "*.manhattan.png", "*/*.csv", "*/*.png"], tables)
        for context in self.contexts:
            name = database_name(self.params["name"], context.name)
            covariance = (layout.panel_covariance(name) if self.params.get("covariance_vcf")
                          else layout.covariance(name))
            batches = ([((g,), stem) for g, stem in zip(self.gwas_files, self.gwas_stems)] if context.name is None
                       else [(tuple(self.gwas_files), "{gwas}")] if self.gwas_files else [])
            for batch, stem in batches:
                self.step("twas", f"twas/{stem}" if context.name is None else f"twas/{context.name}", TwasConfig,
                          [layout.twas_table(gwas_name(g), context.name) for g in batch],
                          model_db_path=layout.database(name), covariance=covariance, gwas_files=batch,
                          out=str(layout.twas_table(stem, context.name)),
                          plots_prefix=str(layout.twas_plots_prefix(stem, context.name)))

    def finemap(self) -> None:
        """Fine-mapping of the regions of each S-PrediXcan result (as TWAS batches them: per GWAS file, or per
        context), the LD from the panel of the SNP covariance."""
        layout = self.layout
        remove_stale(layout.finemap, ["*.tsv", "*/*.tsv"],
                     [layout.finemap_table(stem, c.name) for c in self.contexts for stem in self.gwas_stems])
        vcf, samples_file = ld_panel(self.params)
        for context in self.contexts:
            name = database_name(self.params["name"], context.name)
            batches = ([((stem,), stem) for stem in self.gwas_stems] if context.name is None
                       else [(tuple(self.gwas_stems), "{gwas}")] if self.gwas_stems else [])
            for stems, stem in batches:
                self.step("finemap", f"finemap/{stem}" if context.name is None else f"finemap/{context.name}",
                          FinemapConfig, [layout.finemap_table(s, context.name) for s in stems],
                          twas=tuple(layout.twas_table(s, context.name) for s in stems),
                          model_db_path=layout.database(name), vcf=vcf, samples_file=samples_file,
                          out=str(layout.finemap_table(stem, context.name)))

    def multixcan(self) -> None:
        """S-MultiXcan per GWAS across the contexts, on the joint SNP covariance of their models."""
        layout, runs = self.layout, bool(self.names and self.gwas_files)
        remove_stale(layout.multixcan, ["*.tsv", "*.png", "*.txt.gz"],
                     [layout.multixcan_covariance] + [p for stem in self.gwas_stems
                                                      for p in (layout.multixcan_table(stem), layout.multixcan_qq(stem))]
                     if runs else [])
        if not runs:
            return
        dbs = tuple(layout.database(database_name(self.params["name"], n)) for n in self.names)
        self.runner.step("multixcan", "multixcan/covariance",
                         panel_covariance(self.params, dbs, layout.multixcan_covariance), [layout.multixcan_covariance])
        for gwas, stem in zip(self.gwas_files, self.gwas_stems):
            out = layout.multixcan_table(stem)
            self.step("multixcan", f"multixcan/{stem}", MultixcanConfig, [out],
                      snp_covariance=layout.multixcan_covariance, out=out, context_names=self.names, context_dbs=dbs,
                      context_results=tuple(layout.twas_table(stem, n) for n in self.names), gwas_file=gwas,
                      qq_plot=layout.multixcan_qq(stem))

    def report(self) -> dict[str, Any]:
        """Timings and the report; the paths `enpact run` prints."""
        runner, layout = self.runner, self.layout
        runner.timings.append(("predictor", "predictor (inside reference and personalize)",
                               runner.predictor_seconds(), "ran"))
        runner.timings.append(("total", "total", time.perf_counter() - self.started, "ran"))
        runner.write_timings()
        report(ReportConfig(outdir=self.outdir), self.params)
        databases = [layout.database(database_name(self.params["name"], c.name)) for c in self.contexts]
        return {"outdir": self.outdir, "report": layout.report_html, "databases": databases,
                "covariances": [db.with_suffix(".txt.gz") for db in databases], "twas": layout.twas}


def _process_alive(pid: int) -> bool:
    """Whether a process of this host runs under that id."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's process
        return True
    return True


class OutdirLock:
    """One `enpact run` at a time per results folder: a second run into the same outdir would interleave its
    steps with the first's and leave a folder that holds neither run. The lock file names its holder (host and
    process); one left by a process of this host that no longer runs (killed) is taken over with a message."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> "OutdirLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        host = socket.gethostname()
        while True:
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder_host, _, pid_text = self._holder().partition(" ")
                pid = int(pid_text) if pid_text.isdigit() else -1
                if holder_host == host and pid > 0 and not _process_alive(pid):
                    log.warning("%s: taking over the lock of an earlier run (process %d on %s) that no longer "
                                "runs; its finished steps are kept", self.path.parent.parent, pid, host)
                    self.path.unlink(missing_ok=True)
                    continue
                raise EnpactError(
                    f"{self.path.parent.parent} is being written by another enpact run (process {pid_text or '?'} "
                    f"on {holder_host or '?'}): wait for it to finish or choose another outdir; if that run no "
                    f"longer exists, delete {self.path}") from None
            with os.fdopen(handle, "w") as lock:
                lock.write(f"{host} {os.getpid()}\n")
            return self

    def _holder(self) -> str:
        try:
            return self.path.read_text().strip()
        except FileNotFoundError:
            return ""

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def run_pipeline(params: dict, progress: bool = True) -> dict[str, Any]:
    """Run loci -> reference -> train -> personalize -> linearize -> databases -> TWAS -> fine-mapping -> report."""
    check_device(params["device"])   # what would otherwise be found hours of predictor time later
    check_study(params)   # nothing written yet
    with OutdirLock(ResultsLayout(Path(params["outdir"])).run_lock):
        run = Pipeline(params, progress)
        run.start()
        loci_chunks = run.loci()
        run.reference(loci_chunks)
        chunks = run.selection(loci_chunks)
        run.models()
        run.personalize(chunks)
        run.accuracy(chunks)
        run.linearize(chunks)
        run.twas()
        run.finemap()
        run.multixcan()
        return run.report()
