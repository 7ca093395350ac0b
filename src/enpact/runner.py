"""`enpact run`: every pipeline step on one machine, chunked like the Nextflow pipeline, resumable.

Each step calls the same `enpact <subcommand>` code path that the Nextflow modules call. A step is skipped when
its outputs exist and its fingerprint (the command line and the sizes and times of its inputs) matches the one
recorded when it last completed, so an interrupted run resumes where it stopped and a changed parameter redoes
exactly the steps it affects.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from enpact import __version__
from enpact.checks import check_study, param_names
from enpact.errors import EnpactError
from enpact.io import atomic_path
from enpact.layout import gwas_names, keeps_personalized
from enpact.params import resolve_gwas_files, write_params

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


def _file_stamp(value: str) -> str:
    """Content hash of a small file argument, size and mtime of a large one; directories by their files."""
    path = Path(value)
    if path.is_dir():
        return ",".join(f"{p.name}={_file_stamp(str(p))}" for p in sorted(path.rglob("*")) if p.is_file())
    if not path.is_file():
        return ""
    stat = path.stat()
    if stat.st_size <= HASHED_FILE_LIMIT:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _prefix_stamp(value: str) -> str:
    """Stamps of the files a prefix names (`--linearized DIR/chunk`: DIR/chunk.summary.tsv, ...)."""
    path = Path(value)
    named = sorted(p for p in path.parent.glob(f"{glob.escape(path.name)}.*") if p.is_file())
    return ",".join(f"{p.name}={_file_stamp(str(p))}" for p in named)


OUTPUT_OPTIONS = {"--out", "--outdir", "--out-prefix", "--output-file", "--plots-prefix", "--export-matrix"}
PREFIX_OPTIONS = {"--linearized"}


def fingerprint(argv: Sequence[str]) -> str:
    """Hash of a command line and of the content of the inputs it names (files, directories, file prefixes);
    outputs are named, not stamped."""
    digest = hashlib.sha256()
    option = ""
    for arg in argv:
        digest.update(arg.encode() + b"\0")
        if arg.startswith("--"):
            option = arg
        elif option in PREFIX_OPTIONS:
            digest.update(_prefix_stamp(arg).encode())
        elif option not in OUTPUT_OPTIONS:
            digest.update(_file_stamp(arg).encode())
    return digest.hexdigest()[:20]


class Runner:
    """Runs enpact subcommands in process, with resume and per-step timings."""

    def __init__(self, outdir: Path, progress: bool = True):
        self.outdir = outdir
        self.info = outdir / "pipeline_info"
        self.info.mkdir(parents=True, exist_ok=True)
        self.cache = StepCache.load(self.info / "steps.json")
        self.timings: list[tuple[str, str, float, str]] = []
        self.progress = progress
        from enpact.cli import build_parser

        self.parser = build_parser()

    def command(self, argv: Sequence[object]) -> list[str]:
        """The `enpact` arguments of a step as this runner passes them."""
        argv = [str(a) for a in argv]
        if not self.progress and argv[0] in ("predict", "personalize", "linearize"):
            argv.append("--no-progress")
        return argv

    def step(self, group: str, key: str, argv: list[object], outputs: Sequence[Path]) -> bool:
        """Run `enpact argv` unless already done; returns True when it ran."""
        argv = self.command(argv)
        stamp = fingerprint(argv)
        if self.cache.is_done(key, stamp, outputs):
            self.timings.append((group, key, self.cache.seconds(key) or 0.0, "cached"))
            return False
        log.info("[%s] %s", group, key)
        started = time.perf_counter()
        args = self.parser.parse_args(argv)
        try:
            args.func(args)
        except EnpactError as err:   # the user wrote a parameter file, not these command lines
            raise EnpactError(param_names(str(err), argv[0])) from None
        missing = [o for o in outputs if not Path(o).exists()]
        if missing:
            raise EnpactError(f"step {key} finished without writing {missing[0]}")
        seconds = time.perf_counter() - started
        self.cache.mark(key, stamp, seconds)
        self.timings.append((group, key, seconds, "ran"))
        return True

    def write_timings(self) -> Path:
        """pipeline_info/timings.tsv: one row per step, and seconds per step group."""
        path = self.info / "timings.tsv"
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


def predictor_options(params: dict) -> list[str]:
    """Predictor command-line options from parameters."""
    argv = ["--predictor", params["predictor"], "--weights", params["weights"], "--bins", params["bins"],
            "--aggregate", params["aggregate"], "--tracks", params["tracks"], "--batch-size", params["batch_size"],
            "--device", params["device"], "--precision", params["precision"]]
    if params.get("window_bp"):
        argv += ["--window-bp", params["window_bp"]]
    return argv


def run_pipeline(params: dict, progress: bool = True) -> dict[str, Path]:
    """Run loci -> reference -> train -> personalize -> linearize -> databases -> TWAS -> report."""
    from enpact.predictors import predictor_seconds

    check_study(params)   # what would otherwise be found hours of predictor time later; nothing written yet
    outdir = Path(params["outdir"])
    runner = Runner(outdir, progress)
    started = time.perf_counter()
    predictor_started = predictor_seconds()
    write_params(runner.info / "params.json", params)
    _write_text(runner.info / "software_versions.json", json.dumps(software_versions(), indent=2) + "\n")

    # 1. loci, and chunks of loci and samples
    loci_dir = outdir / "loci"
    loci = loci_dir / "loci.tsv"
    argv = ["loci", "--annotation-format", params["annotation_format"], "--expression", params["expression"],
            "--fasta", params["fasta"], "--out", loci]
    if params.get("annotation"):
        argv += ["--annotation", params["annotation"]]
    for name in ("train_chroms", "valid_chroms", "test_chroms", "gene_types"):
        if params.get(name):
            argv += [f"--{name.replace('_', '-')}", params[name]]
    runner.step("loci", "loci", argv, [loci])
    chunk_dir = loci_dir / "chunks"
    argv = ["chunk", "--loci", loci, "--loci-per-chunk", params["loci_per_chunk"], "--samples-per-chunk",
            params["samples_per_chunk"], "--outdir", chunk_dir]
    argv += ["--samples-file", params["samples"]] if params.get("samples") else ["--vcf", params["vcf"]]
    runner.step("loci", "chunk", argv, [chunk_dir / "loci"])
    loci_chunks = _chunk_files(chunk_dir / "loci", "*.tsv")
    sample_chunks = _chunk_files(chunk_dir / "samples", "*.txt")

    # 2. reference features per loci chunk, merged
    reference_dir = outdir / "reference"
    remove_stale(reference_dir / "chunks", ["*.h5"], [reference_dir / "chunks" / f"{c.stem}.h5" for c in loci_chunks])
    parts = []
    for chunk in loci_chunks:
        part = reference_dir / "chunks" / f"{chunk.stem}.h5"
        runner.step("reference", f"reference/{chunk.stem}", ["predict", "--fasta", params["fasta"], "--loci", chunk,
                    *predictor_options(params), "--out", part], [part])
        parts.append(part)
    reference = reference_dir / "reference.h5"
    runner.step("reference", "reference/merge", ["merge-features", "--inputs", *parts, "--out", reference], [reference])

    # 3. EnPACT model, evaluated on held-out chromosomes
    model_dir = outdir / "model"
    argv = ["train", "--features", reference, "--loci", loci, "--expression", params["expression"], "--model-type",
            params["model_type"], "--folds", params["model_folds"], "--seed", params["seed"], "--device",
            params["device"], "--outdir", model_dir]
    if params.get("baseline_track"):
        argv += ["--baseline-track", params["baseline_track"]]
    runner.step("model", "train", argv, [model_dir / "model.json", model_dir / "metrics.json"])

    # 4. personalized predictions: loci chunk x sample chunk, merged per loci chunk
    personalized_dir = outdir / "personalized"
    remove_stale(personalized_dir / "chunks", ["*.h5"], [personalized_dir / "chunks" / f"{c.stem}.{s.stem}.h5"
                                                        for c in loci_chunks for s in sample_chunks])
    remove_stale(personalized_dir, ["*.h5"], [personalized_dir / f"{c.stem}.h5" for c in loci_chunks])
    merged_stores = []
    for chunk in loci_chunks:
        pieces = []
        for samples in sample_chunks:
            piece = personalized_dir / "chunks" / f"{chunk.stem}.{samples.stem}.h5"
            runner.step("personalize", f"personalize/{chunk.stem}/{samples.stem}",
                        ["personalize", "--fasta", params["fasta"], "--loci", chunk, "--vcf", params["vcf"],
                         "--samples-file", samples, "--model", model_dir, "--weights", params["weights"],
                         "--batch-size", params["batch_size"], "--device", params["device"], "--precision",
                         params["precision"], *(["--allow-unphased"] if params.get("allow_unphased") else []),
                         *(["--allow-precision-mismatch"] if params.get("allow_precision_mismatch") else []),
                         "--out", piece], [piece])
            pieces.append(piece)
        store = personalized_dir / f"{chunk.stem}.h5"
        runner.step("personalize", f"merge/{chunk.stem}", ["merge", "--inputs", *pieces, "--out", store], [store])
        merged_stores.append(store)

    # 5. linearization per loci chunk, then the databases
    linearized_dir = outdir / "linearized"
    remove_stale(linearized_dir / "chunks", ["*.summary.tsv", "*.weights.tsv", "*.covariance.tsv.gz"],
                 [linearized_dir / "chunks" / f"{c.stem}{suffix}" for c in loci_chunks
                  for suffix in (".summary.tsv", ".weights.tsv", ".covariance.tsv.gz")])
    prefixes = []
    for chunk, store in zip(loci_chunks, merged_stores):
        prefix = linearized_dir / "chunks" / chunk.stem
        argv = ["linearize", "--personalized", store, "--vcf", params["vcf"], "--loci", chunk, "--out-prefix", prefix,
                "--maf", params["lin_maf"], "--build", params["build"], "--folds", params["lin_folds"], "--alpha",
                params["lin_alpha"], "--seed", params["seed"], "--min-snps", params["lin_min_snps"]]
        if params.get("lin_window_bp"):
            argv += ["--window-bp", params["lin_window_bp"]]
        for flag in ("keep_indels", "keep_ambiguous", "keep_multiallelic"):
            if params.get(f"lin_{flag}"):
                argv.append(f"--{flag.replace('_', '-')}")
        if params["snp_key"] == "rsid":
            argv.append("--require-rsid")
        if params.get("lin_gwas_pvalue") is not None:  # needs gwas: check_param_rules
            argv += ["--gwas", resolve_gwas_files(params["gwas"])[0], "--gwas-snp-column", params["gwas_snp_column"],
                     "--gwas-pvalue-column", params["gwas_pvalue_column"], "--gwas-pvalue-threshold",
                     params["lin_gwas_pvalue"]]
        outputs = [Path(f"{prefix}.summary.tsv"), Path(f"{prefix}.weights.tsv"), Path(f"{prefix}.covariance.tsv.gz")]
        runner.step("linearize", f"linearize/{chunk.stem}", argv, outputs)
        prefixes.append(prefix)
    name = params["name"]
    db, covariance = linearized_dir / f"{name}.db", linearized_dir / f"{name}.txt.gz"
    argv = ["database", "--linearized", *prefixes, "--name", name, "--outdir", linearized_dir, "--snp-key",
            params["snp_key"], "--pval-threshold", params["db_pval_threshold"], "--rho-threshold",
            params["db_rho_threshold"], "--cv-seed", params["seed"]]
    if params.get("keep_unfiltered"):
        argv.append("--keep-unfiltered")
    if params.get("population"):
        argv += ["--population", params["population"]]
    if params.get("allow_empty_results"):
        argv.append("--allow-empty")
    databases = [db, covariance, linearized_dir / f"{name}.summary.tsv"]
    if params.get("keep_unfiltered"):
        databases += [linearized_dir / f"{name}.unfiltered.db", linearized_dir / f"{name}.unfiltered.txt.gz"]
    remove_stale(linearized_dir, ["*.db", "*.txt.gz", "*.summary.tsv"], databases)
    runner.step("databases", "database", argv, databases)
    if not keeps_personalized(params):
        for path in sorted(personalized_dir.rglob("*.h5")):
            path.unlink()
        log.info("deleted the personalized prediction stores (delete_personalized)")

    # 6. TWAS per GWAS file
    twas_dir = outdir / "twas"
    gwas_files = resolve_gwas_files(params.get("gwas"))
    remove_stale(twas_dir, ["*.csv", "*.qq.png", "*.manhattan.png"],
                 [twas_dir / f"{stem}{suffix}" for stem in gwas_names(gwas_files)
                  for suffix in (".csv", ".qq.png", ".manhattan.png")])
    for gwas, stem in zip(gwas_files, gwas_names(gwas_files)):
        out = twas_dir / f"{stem}.csv"
        argv = ["twas", "--model-db-path", db, "--covariance", covariance, "--gwas-file", gwas,
                "--snp-column", params["gwas_snp_column"], "--effect-allele-column",
                params["gwas_effect_allele_column"], "--non-effect-allele-column",
                params["gwas_non_effect_allele_column"], "--model-db-snp-key", params["snp_key"],
                "--output-file", out, "--plots-prefix", twas_dir / stem]
        for key in ("beta", "se", "zscore", "pvalue", "or"):
            if params.get(f"gwas_{key}_column"):
                argv += [f"--{key}-column", params[f"gwas_{key}_column"]]
        if params.get("gwas_keep_non_rsid"):
            argv.append("--keep-non-rsid")
        if params.get("allow_empty_results"):
            argv.append("--allow-empty")
        runner.step("twas", f"twas/{stem}", argv, [out])

    # 7. report
    runner.timings.append(("predictor", "predictor (inside reference and personalize)",
                           predictor_seconds() - predictor_started, "ran"))
    runner.timings.append(("total", "total", time.perf_counter() - started, "ran"))
    runner.write_timings()
    report = outdir / "report" / "index.html"
    from enpact.report import write_report

    write_report(outdir, params)
    return {"outdir": outdir, "report": report, "database": db, "covariance": covariance, "twas": twas_dir}

