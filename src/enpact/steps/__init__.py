"""The pipeline steps: one typed configuration and one function per step, grouped by phase.

Each configuration is the single definition of its step's options (enpact.options): the `enpact <step>` command
line, the configuration `enpact run` builds from the parameter file, and the options each Nextflow task receives
are derived from its fields. A field's `role` says which fields name input and output files: the runner
fingerprints a step by its configuration and the content of its inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enpact.options import command_text, parameter_names, task_arguments
from enpact.steps.association import FinemapConfig, MultixcanConfig, TwasConfig, finemap, multixcan, twas
from enpact.steps.check import CheckConfig, ReportConfig, check, report
from enpact.steps.common import PredictorConfig, as_dict, fingerprinted, roles
from enpact.steps.linearize import (CovarianceConfig, DatabaseConfig, LinearizeConfig, covariance, database,
                                    linearize)
from enpact.steps.loci import (ChunkConfig, LociConfig, LociUnionConfig, SelectConfig, SequenceConfig, chunk, loci,
                               loci_union, select, sequence)
from enpact.steps.personalize import (AccuracyConfig, MergeConfig, PersonalizeConfig, PlanConfig,
                                      PrecisionAuditConfig, RescoreConfig, accuracy, merge, personalize, plan,
                                      precision_audit, rescore)
from enpact.steps.reference import (EvaluateConfig, MergeFeaturesConfig, PredictConfig, TrainConfig, evaluate,
                                    merge_features, predict, train)

__all__ = ["STEPS", "Step", "step_of", "write_task_options", "PredictorConfig", "as_dict", "fingerprinted", "roles",
           "AccuracyConfig", "CheckConfig", "ChunkConfig", "CovarianceConfig", "DatabaseConfig", "EvaluateConfig",
           "FinemapConfig", "LinearizeConfig", "LociConfig", "LociUnionConfig", "MergeConfig", "MergeFeaturesConfig",
           "MultixcanConfig", "PersonalizeConfig", "PlanConfig", "PrecisionAuditConfig", "PredictConfig",
           "ReportConfig", "RescoreConfig", "SelectConfig", "SequenceConfig", "TrainConfig", "TwasConfig", "report"]


@dataclass(frozen=True)
class Step:
    """A step: its command name, configuration type and function, and what `enpact --help` says of it."""

    name: str
    config: type
    run: Callable[..., Any]
    help: str
    description: str = ""
    uses_predictor: bool = False
    task: bool = True   # a Nextflow module runs it (it gets options from the run's parameters)


STEPS: dict[str, Step] = {step.name: step for step in (
    Step("check", CheckConfig, check, "check a run's parameters and inputs (the first task of the Nextflow "
         "pipeline); write params.json and each step's options",
         "Apply the parameter checks of `enpact run --params` to a run's parameters (YAML or JSON; command-line "
         "strings are cast to the schema's types) and write them with the schema's defaults filled in, as `enpact "
         "run` writes pipeline_info/params.json. With --fasta, --expression and --vcf (readable copies of the inputs "
         "the parameters name, e.g. staged by Nextflow), also check the input files as `enpact run` does before its "
         "first step: genome build (REF alleles), phasing, sample ids, chromosome names, splits, GWAS completeness "
         "and ids. With --contexts and --context-files in place of --expression, every context of the sample sheet "
         "is checked.", task=False),
    Step("loci", LociConfig, loci, "build the loci table (TSS or peak centres, chromosome splits)",
         "Loci for features present in both the annotation and the matrix: genes by TSS (GTF, GFF3, TSV) or peaks "
         "by midpoint (BED, or chr_start_end feature names), split by chromosome."),
    Step("loci-union", LociUnionConfig, loci_union,
         "the loci tables of several contexts as one (one predictor pass serves them all)",
         "Union of the contexts' loci tables (enpact loci, one per context), with a contexts column naming the "
         "contexts that use each locus; a locus id placed differently by two contexts is an error."),
    Step("chunk", ChunkConfig, chunk, "split loci into chunks named from their content",
         "Write loci chunks OUTDIR/<first>--<last>.tsv of at most --loci-per-chunk loci, in positional order."),
    Step("select", SelectConfig, select,
         "the loci to personalize: near GWAS signals, credible-set variants or regions",
         "Keep the loci whose window (--lin-window-bp, or the predictor window of the reference store --features) "
         "holds a GWAS variant with p below the threshold, a fine-mapped credible-set variant, or overlaps a region "
         "(any criterion given). Writes OUT (the loci, with a selected_by column) and its chunks under --chunks; the "
         "reference pass and the EnPACT model keep every locus."),
    Step("sequence", SequenceConfig, sequence, "write reference and haplotype windows as FASTA",
         "Write the exact predictor input windows as FASTA records named {locus_id}|{sample}|{haplotype} "
         "(haplotype 'ref', '1' or '2').", task=False),
    Step("predict", PredictConfig, predict, "predictor features of loci windows (reference, or haplotypes with "
         "--vcf)", "Run the sequence predictor on the reference window of every locus (and, with --vcf, on every "
         "distinct haplotype window) and store the summarised features in HDF5.", uses_predictor=True),
    Step("merge-features", MergeFeaturesConfig, merge_features, "concatenate reference feature stores of loci "
         "chunks"),
    Step("train", TrainConfig, train, "fit an EnPACT model (features -> mean feature level) and evaluate it on "
         "held-out chromosomes", "Fit an EnPACT model on the train split from reference features (enpact predict) "
         "and the mean across samples of the training matrix; write the model, metrics.json, predictions and "
         "plots."),
    Step("evaluate", EvaluateConfig, evaluate, "evaluate a saved EnPACT model on other loci or targets", task=False),
    Step("plan", PlanConfig, plan, "decide which haplotype windows of a loci chunk are identical, over every "
         "individual", "Read the genotypes of every individual (or --samples/--samples-file) at the chunk's loci "
         "and give each haplotype the index of its distinct window (identity: the set of applied variants; no "
         "sequence is built); split the distinct windows into parts of at most --windows-per-part for the predictor "
         "tasks (`enpact personalize --plan OUT --part K`), which `enpact merge --plan OUT` maps back to every "
         "haplotype. The predictor then runs once per distinct window of a locus, whatever the chunk sizes."),
    Step("personalize", PersonalizeConfig, personalize, "EnPACT predictions for the distinct haplotype windows of "
         "one part of a plan", "Run the predictor on every distinct haplotype window of one part of a plan (enpact "
         "plan), apply every context's EnPACT model on the fly and write the part for `enpact merge --plan`.",
         uses_predictor=True),
    Step("merge", MergeConfig, merge, "a plan's parts as its loci chunk's personalized store (or stores as one)",
         "With --plan: map every haplotype of the plan to its distinct window's value from the parts and write the "
         "chunk's personalized store (loci x samples x haplotypes). Without: personalized stores of other loci or "
         "individuals as one. Any input order gives the same bytes."),
    Step("rescore", RescoreConfig, rescore, "apply another EnPACT model to the predictor features a personalized "
         "store kept", "Personalized predictions of a new or retrained EnPACT model without running the predictor: "
         "the model is applied to the features of each distinct window that `enpact personalize --save-features` "
         "kept. The model must read features made like these (same predictor, weights, window, bins, tracks, "
         "precision, options); otherwise it is refused with the reason.", task=False),
    Step("accuracy", AccuracyConfig, accuracy, "personalized predictions against the observed values, per gene (a "
         "table for the report)", "Per gene, Pearson r between the personalized EnPACT predictions and the observed "
         "values across the individuals the stores and the training matrix share, tested one-sided for r > 0 "
         "(p_positive) and r < 0 (p_negative) against permutations of individuals. Writes "
         "OUTDIR/personalized_accuracy.tsv and OUTDIR/personalized.json (what was compared, window counts)."),
    Step("precision-audit", PrecisionAuditConfig, precision_audit, "measure what lower predictor precisions (tf32, "
         "bf16, fp16) cost: agreement with fp32 and speed", "Run predictor + EnPACT model on a sample of loci x "
         "individuals at fp32 and at each precision given, and report per locus the across-individual correlation "
         "with fp32 and the error relative to the between-individual spread, and per precision the time per "
         "window. Use a precision other than fp32 for a study only where this shows it keeps the "
         "between-individual differences.", task=False),
    Step("linearize", LinearizeConfig, linearize, "per-locus elastic nets: variant dosages -> personalized EnPACT "
         "values", "For each locus, fit an elastic net across individuals from the alt-allele dosages of the "
         "variants inside the predictor window to the personalized EnPACT value (mean of the two haplotypes)."),
    Step("database", DatabaseConfig, database, "build PredictDB databases (.db) and SNP covariance files (.txt.gz) "
         "from linearization chunks", "Merge `enpact linearize` chunks into NAME.db and NAME.txt.gz (models passing "
         "the filter), optionally NAME.unfiltered.db/.txt.gz, and NAME.summary.tsv (all loci, with a `kept` "
         "column)."),
    Step("covariance", CovarianceConfig, covariance, "SNP covariance file of model databases' SNPs from a reference "
         "panel (e.g. for another ancestry, or the joint covariance S-MultiXcan needs)", "For each gene, the union "
         "of the SNPs the databases' weights use; their dosage covariance across the panel's individuals (dosage of "
         "the database's effect allele; a panel with REF/ALT swapped is flipped), written as `enpact database` "
         "writes covariance files (GENE RSID1 RSID2 VALUE). SNPs absent from the panel are left out and counted."),
    Step("twas", TwasConfig, twas, "S-PrediXcan: gene-level association from GWAS summary statistics and a "
         "PredictDB model database", "Same method, inputs and output columns as MetaXcan's SPrediXcan.py. Options "
         "also accept SPrediXcan.py's spellings (--model_db_path, --gwas_file, ...)."),
    Step("multixcan", MultixcanConfig, multixcan, "S-MultiXcan: joint gene-level association across contexts from "
         "their S-PrediXcan results", "Same method, inputs and output columns as MetaXcan's SMulTiXcan.py "
         "(tab-separated, sorted by p-value). Contexts are given with --context NAME DB RESULTS (repeated), or found "
         "as SMulTiXcan.py finds them with --models-folder and --metaxcan-folder. Options also accept "
         "SMulTiXcan.py's spellings."),
    Step("finemap", FinemapConfig, finemap, "fine-map regions of TWAS hits: which neighbouring gene is causal "
         "(FOCUS's posterior inclusion probabilities and credible sets)", "FOCUS's model (Mancuso et al. 2019; "
         "pyfocus 0.802): around the genes with significant S-PrediXcan results, regions of +-window_bp; in each, "
         "every configuration of up to --max-genes causal genes is weighed by its Bayes factor, from the z-scores and "
         "the correlation of the genes' predicted expression across the reference panel (their model weights and the "
         "panel's dosages). Writes per result a table with each gene's posterior inclusion probability (PIP), "
         "whether it is in the region's credible set, and the null model's PIP."),
    Step("report", ReportConfig, report, "(re)write report/index.html of a finished run"),
)}


def step_of(config: Any) -> Step:
    """The step a configuration belongs to."""
    for step in STEPS.values():
        if type(config) is step.config:
            return step
    raise TypeError(f"{type(config).__name__} is not a step configuration")


def nextflow_params(step: Step, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as a Nextflow task of the step sees them: a predictor task given a GPU (use_gpu) runs on
    `cuda`; training runs on the CPU queue, without a GPU."""
    if step.name == "train":
        return {**params, "device": "cpu"}
    if step.uses_predictor and str(params.get("use_gpu")).lower() == "true":
        return {**params, "device": "cuda"}
    return dict(params)


def task_options(params: Mapping[str, Any]) -> dict[str, str]:
    """Each Nextflow task's options from the run's parameters, as one shell-quoted line per step."""
    return {step.name: command_text(task_arguments(step.config, nextflow_params(step, params)))
            for step in STEPS.values() if step.task}


def write_task_options(directory: Path, params: Mapping[str, Any]) -> list[Path]:
    """DIR/<step>.args for every step a Nextflow module runs (atomic; an empty file for a step without options)."""
    from enpact.io import atomic_path

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, line in task_options(params).items():
        path = directory / f"{name}.args"
        with atomic_path(path) as tmp:
            tmp.write_text(line + "\n" if line else "")
        written.append(path)
    return written


def parameter_name_map(step_name: str) -> dict[str, str]:
    """A step's flags -> the parameters that set them (for messages of `enpact run`)."""
    step = STEPS.get(step_name)
    return parameter_names(step.config) if step else {}
