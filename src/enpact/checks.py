"""Cheap checks of a study's input files, before any predictor step (both engines: `enpact run` calls
`check_study` before its first step, the Nextflow pipeline's first task runs `enpact check` with the same code).

What a wrong input would otherwise cost hours of GPU time to find: a genome build that does not match the VCF
(REF alleles at variants inside the loci windows), unphased genotypes, sample ids missing from the VCF,
chromosome names that do not line up across FASTA, annotation, VCF and GWAS, a GWAS whose ids cannot match the
chosen SNP key or that gives no z-score or is cut short, splits that name chromosomes without loci, too few
individuals for the folds, predictor windows longer than the chromosomes. Each problem is one EnpactError naming
the file, the parameter and what to do; what is only worth knowing is logged as a warning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from enpact.errors import EnpactError
from enpact.params import resolve_gwas_files

log = logging.getLogger(__name__)

REF_CHECK_LOCI = 60          # loci (spread over the chromosomes) whose windows' variants are checked
REF_CHECK_BP = 20_000        # around each locus centre
PHASING_CHECK_SAMPLES = 200  # individuals whose genotypes are checked for phase
ID_SAMPLE_ROWS = 2_000       # GWAS ids looked at for their format
MIN_INDIVIDUALS_PER_FOLD = 2
VARID = re.compile(r"^(chr)?[0-9A-Za-z]+_\d+_[ACGTN]+_[ACGTN]+(_b\d+)?$", re.I)
RSID = re.compile(r"^rs\d+$")


@dataclass
class StudyFiles:
    """Readable copies of a study's input files (the parameters' paths, or what Nextflow staged)."""

    fasta: Path
    expression: Path
    vcf: Path
    annotation: Path | None = None
    samples: Path | None = None
    gwas: list[Path] = field(default_factory=list)
    contexts: list | None = None   # enpact.contexts.Context of a study with several; None: expression/annotation

    @classmethod
    def from_params(cls, params: dict) -> "StudyFiles":
        """The files the parameters name."""
        from enpact.contexts import study_contexts

        optional = {name: Path(params[name]) if params.get(name) else None for name in ("annotation", "samples")}
        contexts = study_contexts(params)
        return cls(Path(params["fasta"]), contexts[0].expression, Path(params["vcf"]), **optional,
                   gwas=[Path(g) for g in resolve_gwas_files(params.get("gwas"))],
                   contexts=contexts if params.get("contexts") else None)

    def study_contexts(self, params: dict) -> list:
        """The contexts to check: those of the sample sheet, or the single expression/annotation."""
        from enpact.contexts import Context

        return self.contexts or [Context(None, self.expression, self.annotation,
                                         params.get("annotation_format", "auto"))]


def predictor_window_bp(params: dict) -> int:
    """The predictor's input length, as the predictor decides it: the window_bp parameter, else the checkpoint's
    sidecar, else the input length of the predictor's default weights."""
    from enpact.registry import PREDICTORS

    predictor = PREDICTORS.load(params.get("predictor") or "enformer")
    weights = params.get("weights")
    if hasattr(predictor, "choose_weights"):
        weights = predictor.choose_weights(weights, params.get("device", "auto"), params.get("precision", "fp32"))
        return predictor.input_length(weights, params.get("window_bp"))
    return int(params.get("window_bp") or 0)


def check_study(params: dict, files: StudyFiles | None = None) -> pd.DataFrame:
    """Run every check; return the loci the run will use. Raises EnpactError on the first problem."""
    from enpact.expression import check_between_feature_signal, read_expression
    from enpact.genome import Genome
    from enpact.loci import build_loci, union_loci
    from enpact.variants import VcfReader, read_sample_list

    files = files or StudyFiles.from_params(params)
    genome = Genome(files.fasta)
    tables, matrices = {}, {}
    for context in files.study_contexts(params):
        matrix = read_expression(context.expression)
        check_between_feature_signal(matrix, context.expression)
        annotation = context.annotation if context.annotation is not None else context.expression
        loci, _dropped = build_loci(annotation, context.annotation_format, matrix.index.tolist(),
                                    genome.chroms, params.get("train_chroms"), params.get("valid_chroms"),
                                    params.get("test_chroms"), params.get("gene_types"))
        try:
            check_splits(loci, params)
        except EnpactError as err:
            raise EnpactError(f"context {context.name}: {err}" if context.name else str(err)) from None
        tables[context.name], matrices[context.expression] = loci, matrix
    loci = union_loci(tables) if None not in tables else tables[None]
    check_window_lengths(loci, genome, predictor_window_bp(params), params)
    samples = read_sample_list(files.samples) if files.samples else None
    vcf = VcfReader(files.vcf, samples, allow_unphased=bool(params.get("allow_unphased")))
    for expression, matrix in matrices.items():
        check_individuals(vcf.samples, list(matrix.columns), params, expression, files.vcf)
    check_vcf_chromosomes(loci, vcf, files.vcf)
    check_variants_in_windows(loci, files.vcf, samples or vcf.samples, genome, params)
    for gwas in files.gwas:
        check_gwas(gwas, loci, params)
    genome.close()
    vcf.close()
    log.info("inputs checked: %d loci, %d individuals, %d GWAS file(s)", len(loci), len(vcf.samples), len(files.gwas))
    return loci


def check_splits(loci: pd.DataFrame, params: dict) -> None:
    """Every chromosome a split names has loci, train has enough to fit a model, and valid and test have loci."""
    from enpact.genome import bare_chrom
    from enpact.loci import MIN_TRAIN_LOCI, _chrom_list

    present = {bare_chrom(c) for c in loci["chrom"].unique()}
    for split in ("train", "valid", "test"):
        for chrom in _chrom_list(params.get(f"{split}_chroms")) or []:
            if bare_chrom(chrom) not in present:
                raise EnpactError(
                    f"parameter '{split}_chroms': no locus is on '{chrom}' (loci are on "
                    f"{', '.join(sorted(loci['chrom'].unique())[:8])}); check the chromosome names")
        if split == "train" and 0 < (loci["split"] == "train").sum() < MIN_TRAIN_LOCI:
            raise EnpactError(f"only {int((loci['split'] == 'train').sum())} loci are on the train chromosomes (at "
                              f"least {MIN_TRAIN_LOCI} are needed to fit the EnPACT model); name more chromosomes in "
                              "'train_chroms', or check the annotation and the matrix's feature ids")
        if not (loci["split"] == split).any():
            raise EnpactError(f"no locus is on a {split} chromosome: the model would not be "
                              f"{'trained' if split == 'train' else 'evaluated on held-out chromosomes'}; "
                              f"name chromosomes with loci in '{split}_chroms'")


def check_device(device: str) -> None:
    """The device `enpact run` computes on exists here (a Nextflow task's GPU is its own, checked in the task)."""
    from enpact.devices import resolve_device

    try:
        resolve_device(str(device))
    except EnpactError as err:
        raise EnpactError(param_names(str(err), "predict")) from None


def check_window_lengths(loci: pd.DataFrame, genome, window_bp: int, params: dict) -> None:
    """No chromosome with loci is shorter than the predictor window (its windows would be mostly padding); 0: a
    predictor that knows its window only once loaded (nothing to check)."""
    if not window_bp:
        return
    for chrom in loci["chrom"].unique():
        length = genome.lengths[genome.resolve(chrom)]
        if length < window_bp:
            raise EnpactError(
                f"{chrom} is {length:,} bp, shorter than the predictor window ({window_bp:,} bp): its "
                f"{int((loci['chrom'] == chrom).sum())} loci would be predicted from padding; leave it out of "
                "the splits or the annotation, or use a predictor with a shorter window (window_bp)")
    lin_window = params.get("lin_window_bp")
    if lin_window and int(lin_window) > window_bp:
        raise EnpactError(f"parameter 'lin_window_bp' ({int(lin_window):,}) is longer than the predictor window "
                          f"({window_bp:,} bp): variants outside the window cannot change a prediction")


def check_individuals(vcf_samples: Sequence[str], matrix_samples: Sequence[str], params: dict,
                      expression: Path, vcf: Path) -> None:
    """Enough individuals for the folds; how many of the matrix's samples are in the VCF."""
    folds = int(params.get("lin_folds", 10))
    if len(vcf_samples) < MIN_INDIVIDUALS_PER_FOLD * folds:
        raise EnpactError(
            f"{vcf}: {len(vcf_samples)} individuals are too few for {folds} cross-validation folds "
            f"(lin_folds): linearization needs at least {MIN_INDIVIDUALS_PER_FOLD * folds}; add individuals or "
            "lower lin_folds")
    shared = set(vcf_samples) & set(matrix_samples)
    missing = [s for s in matrix_samples if s not in shared]
    log.info("%d of the training matrix's %d samples are among the VCF's %d individuals used", len(shared),
             len(matrix_samples), len(vcf_samples))
    if missing and shared:
        log.warning("%s: %d of the training matrix's %d samples are not among the VCF's individuals used "
                    "(e.g. %s): the report's personalized accuracy uses the %d shared ones", expression,
                    len(missing), len(matrix_samples), missing[0], len(shared))
    elif not shared:
        log.warning("%s: no sample of the training matrix is among the VCF's individuals used: personalized "
                    "predictions cannot be compared with observed values (the EnPACT model only needs the "
                    "matrix's means)", expression)


def check_vcf_chromosomes(loci: pd.DataFrame, vcf, path: Path) -> None:
    """The VCF has variants on the loci's chromosomes (up to a `chr` prefix)."""
    chroms = list(loci["chrom"].unique())
    missing = [c for c in chroms if vcf.resolve(c) is None]
    if len(missing) == len(chroms):
        raise EnpactError(
            f"{path}: no variants on the loci's chromosomes ({', '.join(chroms[:6])}; the VCF has "
            f"{', '.join(list(vcf.contigs)[:6]) or 'no contigs'}): use a VCF of the same genome build and naming")
    if missing:
        counts = loci[loci["chrom"].isin(missing)].groupby("chrom").size()
        log.warning("%s: no variants on %s: their %d loci get reference predictions for everyone and no "
                    "linear model", path, ", ".join(missing), int(counts.sum()))


def spread(loci: pd.DataFrame, n: int) -> pd.DataFrame:
    """Up to n loci spread evenly over each chromosome's loci."""
    per_chrom = max(1, n // max(1, loci["chrom"].nunique()))
    picks = [group.iloc[np.linspace(0, len(group) - 1, min(per_chrom, len(group))).astype(int)]
             for _, group in loci.groupby("chrom", sort=False)]
    return pd.concat(picks).drop_duplicates("locus_id")


def check_variants_in_windows(loci: pd.DataFrame, vcf_path: Path, samples: Sequence[str], genome,
                              params: dict) -> None:
    """REF alleles against the FASTA and phasing, at the variants near a spread of loci."""
    from enpact.variants import VcfReader

    reader = VcfReader(vcf_path, list(samples)[:PHASING_CHECK_SAMPLES],
                       allow_unphased=bool(params.get("allow_unphased")))
    checked = 0
    for chrom, center in spread(loci, REF_CHECK_LOCI)[["chrom", "center"]].itertuples(index=False):
        start = max(0, int(center) - REF_CHECK_BP // 2)
        try:
            checked += len(reader.read(chrom, start, start + REF_CHECK_BP, genome))
        except EnpactError as err:
            text = str(err).replace("pass --allow-unphased", "set allow_unphased: true")
            raise EnpactError(text) from None
    reader.close()
    log.info("%s: REF alleles and phasing checked at %d variants near %d loci", vcf_path, checked,
             min(REF_CHECK_LOCI, len(loci)))


def check_gwas(path: Path, loci: pd.DataFrame, params: dict) -> None:
    """The GWAS gives a z-score in the configured columns, is complete, and its ids can match the SNP key."""
    from enpact.options import from_params
    from enpact.steps.association import GwasOptions
    from enpact.twas import check_gwas_readable

    columns = from_params(GwasOptions, params).columns()
    try:
        columns.z_source()
    except EnpactError as err:
        raise EnpactError(f"{path}: {param_names(str(err), 'twas')}") from None
    rows = check_gwas_readable(path, columns)
    if rows == 0:
        raise EnpactError(f"{path}: the GWAS has a header but no rows; give the complete summary statistics")
    check_gwas_ids(first_ids(path, columns.snp), path, loci, params)


def first_ids(path: Path, column: str) -> list[str]:
    """The SNP ids of a GWAS file's first rows."""
    from enpact.io import header_columns, open_text, sniff_separator

    separator = sniff_separator(path)
    index = header_columns(path, separator).index(column)
    with open_text(path) as handle:
        next(handle)
        rows = [line.rstrip("\r\n") for _, line in zip(range(ID_SAMPLE_ROWS), handle)]
    return [fields[index] for fields in (r.split(separator) if separator else r.split() for r in rows)
            if len(fields) > index]


def check_gwas_ids(ids: Sequence[str], path: Path, loci: pd.DataFrame, params: dict) -> None:
    """GWAS ids in the form the SNP key needs (GTEx-style varIDs chr1_12345_A_G_b38, or rsids)."""
    ids = [i for i in ids if i and i not in (".", "NA")]
    if not ids:
        raise EnpactError(f"{path}: column '{params['gwas_snp_column']}' (gwas_snp_column) has no SNP ids")
    n_varid = sum(bool(VARID.match(i)) for i in ids)
    n_rsid = sum(bool(RSID.match(i)) for i in ids)
    key = params.get("snp_key", "varID")
    if key == "varID" and n_varid < len(ids) / 2:
        kind = "rsids" if n_rsid >= len(ids) / 2 else "not chrom_pos_ref_alt_build ids"
        raise EnpactError(
            f"{path}: column '{params['gwas_snp_column']}' holds {kind} (e.g. '{ids[0]}') but snp_key is varID; "
            "set snp_key: rsid, or gwas_snp_column to a column of chrom_pos_ref_alt_build ids")
    if key == "rsid" and n_rsid < len(ids) / 2:
        raise EnpactError(
            f"{path}: column '{params['gwas_snp_column']}' does not hold rsids (e.g. '{ids[0]}') but snp_key is "
            "rsid; set snp_key: varID for chrom_pos_ref_alt_build ids, or gwas_snp_column to the rsid column")
    if key == "varID" and sum(i.lower().startswith("chr") for i in ids if VARID.match(i)) <= n_varid / 2:
        raise EnpactError(
            f"{path}: GWAS variant ids name chromosomes like '{ids[0].split('_')[0]}', the models' ids like GTEx v8 "
            "(chr1_12345_A_G_b38): no SNP would match; harmonise the GWAS to GTEx-style ids (prefix 'chr')")


# ----------------------------------------------------------------------------------------------------------
# parameter names in messages

def param_names(message: str, step: str) -> str:
    """A step's error message with its command-line options named as the parameters that set them."""
    from enpact.steps import parameter_name_map

    options = parameter_name_map(step)
    return re.sub(r"--[a-z][a-z0-9-]*", lambda match: options.get(match.group(0), match.group(0)), message)
