"""Where a run's results go: the layout of the output folder and the naming rules both engines (`enpact run` and
Nextflow) follow.

The Nextflow side cannot import this module; it runs the `enpact` commands that apply these rules (e.g.
`enpact twas --output-file 'twas/{gwas}.csv'`), and tests/test_nextflow_parity.py checks its publishing rules
against the functions here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from enpact.errors import EnpactError

GWAS_NAME_SUFFIXES = (".gz", ".bgz", ".bz2", ".txt", ".tsv", ".csv")


def gwas_name(path: str | Path) -> str:
    """The output name of a GWAS file: its file name without .gz/.bgz/.bz2 and .txt/.tsv/.csv suffixes."""
    name = Path(str(path)).name
    changed = True
    while changed:
        changed = False
        for suffix in GWAS_NAME_SUFFIXES:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name, changed = name[: -len(suffix)], True
    return name


def gwas_names(gwas_files: Sequence[str | Path], source: str = "parameter 'gwas'") -> list[str]:
    """Output names of GWAS files; two files with one name would overwrite each other's results: an error."""
    names = [gwas_name(path) for path in gwas_files]
    first: dict[str, str | Path] = {}
    for path, name in zip(gwas_files, names):
        if name in first:
            raise EnpactError(f"{source}: {first[name]} and {path} would both write twas/{name}.csv; "
                              "rename or link one of them under another name")
        first[name] = path
    return names


def keeps_personalized(params: dict) -> bool:
    """Whether the personalized prediction stores stay in the results (not with delete_personalized)."""
    return not params.get("delete_personalized")


TWAS_SUFFIXES = (".csv", ".qq.png", ".manhattan.png")
ACCURACY_TABLE = "personalized_accuracy.tsv"
ACCURACY_SUMMARY = "personalized.json"


def database_name(name: str, context: str | None) -> str:
    """A database's name: the run's name, followed by the context's for a run of several contexts."""
    return name if context is None else f"{name}_{context}"


@dataclass(frozen=True)
class ResultsLayout:
    """Every path under a run's output folder: `enpact run` writes there, the report reads there, and Nextflow's
    publishDir rules are tested against it (tests/test_nextflow_parity.py)."""

    root: Path

    # pipeline_info/
    @property
    def pipeline_info(self) -> Path:
        return self.root / "pipeline_info"

    @property
    def params_json(self) -> Path:
        return self.pipeline_info / "params.json"

    @property
    def software_versions(self) -> Path:
        return self.pipeline_info / "software_versions.json"

    @property
    def steps_json(self) -> Path:
        return self.pipeline_info / "steps.json"

    @property
    def timings(self) -> Path:
        return self.pipeline_info / "timings.tsv"

    @property
    def input_hashes(self) -> Path:
        return self.pipeline_info / "input_hashes.json"

    @property
    def run_lock(self) -> Path:
        """Held by the `enpact run` writing this folder (removed when it ends)."""
        return self.pipeline_info / "run.lock"

    # loci/
    @property
    def loci(self) -> Path:
        return self.root / "loci" / "loci.tsv"

    def context_loci(self, context: str | None) -> Path:
        """A context's own loci table (the union's loci.tsv for a single-context run)."""
        return self.loci if context is None else self.root / "loci" / "contexts" / f"{context}.tsv"

    @property
    def selected_loci(self) -> Path:
        """The loci personalized when a selection is given (GWAS signal, credible sets, regions)."""
        return self.root / "loci" / "selected.tsv"

    @property
    def selected_chunks(self) -> Path:
        return self.chunks / "selected"

    @property
    def chunks(self) -> Path:
        return self.root / "loci" / "chunks"

    @property
    def loci_chunks(self) -> Path:
        return self.chunks / "loci"

    # reference/
    @property
    def reference_chunks(self) -> Path:
        return self.root / "reference" / "chunks"

    def reference_chunk(self, loci_chunk: str) -> Path:
        return self.reference_chunks / f"{loci_chunk}.h5"

    @property
    def reference(self) -> Path:
        return self.root / "reference" / "reference.h5"

    # model/
    @property
    def model(self) -> Path:
        return self.root / "model"

    def context_model(self, context: str | None) -> Path:
        """A context's EnPACT model folder: model/ for a single-context run, model/<context>/ otherwise."""
        return self.model if context is None else self.model / context

    @property
    def model_json(self) -> Path:
        return self.model / "model.json"

    @property
    def metrics(self) -> Path:
        return self.model / "metrics.json"

    @property
    def model_plots(self) -> tuple[Path, Path]:
        return self.model / "observed_vs_predicted.png", self.model / "baseline_comparison.png"

    # personalized/
    @property
    def personalized(self) -> Path:
        return self.root / "personalized"

    @property
    def plans(self) -> Path:
        return self.personalized / "plans"

    def plan(self, loci_chunk: str) -> Path:
        """The distinct windows of a loci chunk over every individual (enpact plan)."""
        return self.plans / f"{loci_chunk}.h5"

    def personalized_part(self, loci_chunk: str, part: int) -> Path:
        """One predictor task's distinct windows of a loci chunk (enpact personalize --plan --part)."""
        return self.personalized / "chunks" / f"{loci_chunk}.part{part:04d}.h5"

    def personalized_store(self, loci_chunk: str) -> Path:
        return self.personalized / f"{loci_chunk}.h5"

    # accuracy/ (the accuracy step: personalized predictions against the observed values)
    @property
    def accuracy(self) -> Path:
        return self.root / "accuracy"

    def context_accuracy(self, context: str | None) -> Path:
        """A context's accuracy folder: accuracy/ for a single-context run, accuracy/<context>/ otherwise."""
        return self.accuracy if context is None else self.accuracy / context

    @property
    def accuracy_table(self) -> Path:
        return self.accuracy / ACCURACY_TABLE

    @property
    def accuracy_summary(self) -> Path:
        return self.accuracy / ACCURACY_SUMMARY

    # linearized/
    @property
    def linearized(self) -> Path:
        return self.root / "linearized"

    def linearized_chunk(self, loci_chunk: str, context: str | None = None) -> Path:
        folder = self.linearized / "chunks" if context is None else self.linearized / "chunks" / context
        return folder / f"{loci_chunk}.h5"

    def database(self, name: str) -> Path:
        return self.linearized / f"{name}.db"

    def covariance(self, name: str) -> Path:
        return self.linearized / f"{name}.txt.gz"

    def panel_covariance(self, name: str) -> Path:
        """The SNP covariance from the reference panel (covariance_vcf), which S-PrediXcan then reads."""
        return self.linearized / f"{name}.reference_panel.txt.gz"

    def linearization_summary(self, name: str) -> Path:
        return self.linearized / f"{name}.summary.tsv"

    def unfiltered_database(self, name: str) -> Path:
        return self.linearized / f"{name}.unfiltered.db"

    def unfiltered_covariance(self, name: str) -> Path:
        return self.linearized / f"{name}.unfiltered.txt.gz"

    # twas/
    @property
    def twas(self) -> Path:
        return self.root / "twas"

    def context_twas(self, context: str | None) -> Path:
        """S-PrediXcan results of a context: twas/ for a single-context run, twas/<context>/ otherwise."""
        return self.twas if context is None else self.twas / context

    def twas_table(self, gwas: str, context: str | None = None) -> Path:
        return self.context_twas(context) / f"{gwas}.csv"

    def twas_plots_prefix(self, gwas: str, context: str | None = None) -> Path:
        return self.context_twas(context) / gwas

    def twas_plots(self, gwas: str, context: str | None = None) -> tuple[Path, Path]:
        folder = self.context_twas(context)
        return folder / f"{gwas}.qq.png", folder / f"{gwas}.manhattan.png"

    # finemap/ (fine-mapping of the TWAS regions, per GWAS; per context with several)
    @property
    def finemap(self) -> Path:
        return self.root / "finemap"

    def context_finemap(self, context: str | None) -> Path:
        """Fine-mapping tables of a context: finemap/ for a single-context run, finemap/<context>/ otherwise."""
        return self.finemap if context is None else self.finemap / context

    def finemap_table(self, gwas: str, context: str | None = None) -> Path:
        return self.context_finemap(context) / f"{gwas}.tsv"

    # multixcan/ (S-MultiXcan across the contexts, per GWAS)
    @property
    def multixcan(self) -> Path:
        return self.root / "multixcan"

    @property
    def multixcan_covariance(self) -> Path:
        return self.multixcan / "snp_covariance.txt.gz"

    def multixcan_table(self, gwas: str) -> Path:
        return self.multixcan / f"{gwas}.tsv"

    def multixcan_qq(self, gwas: str) -> Path:
        return self.multixcan / f"{gwas}.qq.png"

    # report/
    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def report_html(self) -> Path:
        return self.report / "index.html"

    @property
    def report_summary(self) -> Path:
        return self.report / "summary.json"


    @property
    def personalized_accuracy_plot(self) -> Path:
        return self.report / "personalized_accuracy.png"

    @property
    def linearization_plot(self) -> Path:
        return self.report / "linearization_fit.png"
