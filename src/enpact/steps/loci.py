"""Steps that decide the loci: `enpact loci`, `loci-union`, `chunk`, `select`, and `sequence` (the windows as
FASTA, for auditing)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from enpact.errors import EnpactError
from enpact.loci import ANNOTATION_FORMATS
from enpact.options import comma_list, option, render_comma_list
from enpact.steps.common import (allow_unphased_option, fasta_option, first_repeat, input_file, loci_per_chunk_option,
                                 optional_input, output_file, samples_file_option, samples_option, selected_samples,
                                 vcf_option)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LociConfig:
    """`enpact loci`: one locus per feature of the matrix, with its chromosome split."""

    expression: Path = input_file("training matrix NAME IND1 IND2 ...")
    fasta: Path = fasta_option()
    out: Path = output_file("output loci TSV; dropped features go to OUT.dropped.tsv")
    annotation: Path | None = optional_input("GTF/GFF3/TSV gene annotation or BED peaks (not needed with "
                                             "--annotation-format names)")
    annotation_format: str = option("auto", param="annotation_format", choices=ANNOTATION_FORMATS)
    train_chroms: str | None = option(None, param="train_chroms", help="comma-separated training chromosomes "
                                      "(default: all numbered autosomes not held out)")
    valid_chroms: str | None = option(None, param="valid_chroms", help="comma-separated validation chromosomes "
                                      "(default: second-to-last numbered autosome with loci)")
    test_chroms: str | None = option(None, param="test_chroms", help="comma-separated test chromosomes (default: "
                                     "last numbered autosome with loci)")
    gene_types: str | None = option(None, param="gene_types", help="comma-separated gene types to keep "
                                    "(default: all)")


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
class LociUnionConfig:
    """`enpact loci-union`: the contexts' loci tables as one, with the contexts that use each locus."""

    loci: tuple[Path, ...] = input_file("the contexts' loci tables")
    out: Path = output_file("output union loci TSV")
    contexts: tuple[str, ...] = option(parse=comma_list, render=render_comma_list,
                                       help="comma-separated context names, in the order of --loci")


def loci_union(config: LociUnionConfig) -> pd.DataFrame:
    """Write the union loci table (one predictor pass then serves every context)."""
    from enpact.loci import check_context_name, read_loci, union_loci, write_loci

    if len(config.loci) != len(config.contexts):
        raise EnpactError(f"{len(config.contexts)} context names for {len(config.loci)} loci tables; give one each")
    if len(set(config.contexts)) != len(config.contexts):
        raise EnpactError(f"context '{first_repeat(config.contexts)}' is given twice")
    tables = {check_context_name(name, "--contexts"): read_loci(path)
              for name, path in zip(config.contexts, config.loci)}
    union = union_loci(tables)
    write_loci(union, config.out)
    log.info("wrote %s: %d loci used by %d contexts (%s)", config.out, len(union), len(tables),
             ", ".join(f"{name} {len(t)}" for name, t in tables.items()))
    return union


@dataclass(frozen=True)
class ChunkConfig:
    """`enpact chunk`: loci in chunks named from their content."""

    loci: Path = input_file("loci TSV")
    outdir: Path = output_file("folder of the chunks (<first>--<last>.tsv)")
    loci_per_chunk: int = loci_per_chunk_option()


def chunk(config: ChunkConfig) -> list[Path]:
    """Write OUTDIR/<first>--<last>.tsv."""
    from enpact.loci import read_loci, write_loci_chunks

    files = write_loci_chunks(read_loci(config.loci), config.loci_per_chunk, config.outdir)
    log.info("wrote %d loci chunks under %s", len(files), config.outdir)
    return files


@dataclass(frozen=True)
class SelectConfig:
    """`enpact select`: the loci to personalize (near a GWAS signal, holding a credible-set variant or overlapping a
    region), in chunks; the reference pass and training keep every locus."""

    loci: Path = input_file("loci table (enpact loci / loci-union)")
    out: Path = output_file("selected loci TSV")
    chunks: Path = output_file("folder for the selected loci's chunks")
    loci_per_chunk: int = loci_per_chunk_option()
    features: Path | None = optional_input("reference feature store (its predictor window)")
    lin_window_bp: int | None = option(None, param="lin_window_bp",
                                       help="window around each locus (default: the predictor's)")
    gwas: Path | None = optional_input("GWAS summary statistics")
    gwas_snp_column: str = option("variant_id", param="gwas_snp_column", help="its chrom_pos_ref_alt id column")
    gwas_pvalue_column: str = option("pvalue", param="gwas_pvalue_column")
    gwas_pvalue_threshold: float = option(5e-8, param="lin_gwas_pvalue")
    credible_sets: Path | None = optional_input("fine-mapped variants: a table with variant_id (chrom_pos_ref_alt) "
                                                "or chrom and pos (1-based)", param="select_variants")
    regions: Path | None = optional_input("BED regions", param="select_regions")


def select(config: SelectConfig) -> pd.DataFrame:
    """Write the selected loci (with the criteria that selected each) and their chunks."""
    from enpact.loci import read_loci, write_loci, write_loci_chunks
    from enpact.selection import read_credible_variants, read_gwas_signal, read_regions, select_loci

    window = config.lin_window_bp or predictor_window(config.features)
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


def predictor_window(features: Path | None, flag: str = "--lin-window-bp") -> int:
    """The predictor window recorded in a reference feature store; an error naming `flag` without one."""
    from enpact.store import read_feature_store

    window = int(read_feature_store(features).meta.get("predictor", {}).get("window_bp", 0)) if features else 0
    if not window:
        raise EnpactError(f"{flag} is needed (or --features, the reference store whose predictor window is used)")
    return window


@dataclass(frozen=True)
class SequenceConfig:
    """`enpact sequence`: the exact predictor input windows as FASTA, for auditing."""

    fasta: Path = fasta_option()
    loci: Path = input_file("loci TSV (locus_id, chrom, center)")
    out: Path = output_file("output FASTA")
    window_bp: int = option(help="window length in bp")
    vcf: Path | None = vcf_option(required=False)
    samples: tuple[str, ...] | None = samples_option()
    samples_file: Path | None = samples_file_option()
    allow_unphased: bool = allow_unphased_option()
    line_width: int = option(60, help="FASTA line width (0: one line per record)")


def sequence(config: SequenceConfig) -> int:
    """Write the reference and haplotype windows; returns the record count."""
    from enpact.genome import Genome
    from enpact.loci import read_loci
    from enpact.sequences import write_window_fasta
    from enpact.variants import VcfReader

    vcf = VcfReader(config.vcf, selected_samples(config), config.allow_unphased) if config.vcf else None
    n = write_window_fasta(config.out, Genome(config.fasta), read_loci(config.loci), config.window_bp, vcf,
                           config.line_width)
    if vcf is not None:
        vcf.counts.log(str(config.vcf))
    log.info("wrote %d windows to %s", n, config.out)
    return n
