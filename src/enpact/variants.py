"""Reading phased variants from an indexed VCF/BCF: one region read for all samples at once."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pysam

from enpact.errors import EnpactError
from enpact.genome import Genome, resolve_chrom, window_start
from enpact.io import file_compression

log = logging.getLogger(__name__)

MISSING = -1
# what became of missing alleles ('.' in GT), for the reader's warning
MISSING_IN_SEQUENCES = ("carry the reference base in the haplotype sequences (linear models and SNP covariances give "
                        "a genotype with a missing allele the site's mean dosage)")
MISSING_IN_DOSAGES = ("were read (a model SNP's genotype with a missing allele gets the site's mean dosage over the "
                      "called individuals)")


def is_symbolic(allele: str) -> bool:
    """True for alleles that are not literal sequence: <DEL>, *, breakends, '.'."""
    return allele in ("*", ".", "") or allele.startswith("<") or "[" in allele or "]" in allele


@dataclass
class VariantCounts:
    """What was skipped or defaulted while reading variants; logged once per command."""

    records: int = 0
    missing_calls: int = 0
    symbolic_calls: int = 0
    unphased_calls: int = 0
    overlapping_skipped: int = 0

    def add(self, other: "VariantCounts") -> None:
        """Accumulate another set of counts into this one."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def log(self, source: str, missing_calls_are: str = MISSING_IN_SEQUENCES) -> None:
        """Log the counts that are not zero; `missing_calls_are`: what the caller made of missing calls."""
        parts = [f"{name.replace('_', ' ')}: {getattr(self, name)}" for name in self.__dataclass_fields__]
        log.info("%s: %s", source, ", ".join(parts))
        if self.symbolic_calls:
            log.warning("%s: %d calls of symbolic or '*' alleles were applied as reference", source, self.symbolic_calls)
        if self.missing_calls:
            log.warning("%s: %d missing genotype alleles %s", source, self.missing_calls, missing_calls_are)


@dataclass
class VariantTable:
    """Variants of one chromosome region with the allele index of every selected haplotype.

    `alleles[v, s, h]` is the allele index (0 = REF, k = k-th ALT, -1 = missing) of sample s, haplotype h.
    """

    chrom: str
    pos: np.ndarray  # 0-based start, int64
    ref: list[str]
    alts: list[tuple[str, ...]]
    ids: list[str]
    alleles: np.ndarray  # (n_variants, n_samples, 2) int16
    counts: VariantCounts = field(default_factory=VariantCounts)

    def __len__(self) -> int:
        return len(self.pos)

    @property
    def ref_len(self) -> np.ndarray:
        """Length of each REF allele."""
        return np.fromiter((len(r) for r in self.ref), dtype=np.int64, count=len(self.ref))

    def subset(self, index: np.ndarray) -> "VariantTable":
        """The variants at the given positions of this table (counts are not carried over)."""
        index = np.asarray(index, dtype=np.int64)
        return VariantTable(
            chrom=self.chrom,
            pos=self.pos[index],
            ref=[self.ref[i] for i in index],
            alts=[self.alts[i] for i in index],
            ids=[self.ids[i] for i in index],
            alleles=self.alleles[index],
        )

    def overlapping(self, start: int, end: int) -> np.ndarray:
        """Indexes of variants whose REF span intersects [start, end)."""
        ends = self.pos + self.ref_len
        return np.flatnonzero((self.pos < end) & (ends > start))


def _parse_gt(gt: str) -> tuple[int, int, bool]:
    """Parse one GT string into (allele 1, allele 2, phased); haploid calls are doubled."""
    if "|" in gt:
        a, _, b = gt.partition("|")
        phased = True
    elif "/" in gt:
        a, _, b = gt.partition("/")
        phased = False
    else:
        a = b = gt
        phased = True
    first = MISSING if a in (".", "") else int(a)
    second = MISSING if b in (".", "") else int(b)
    return first, second, phased


def bgzip_advice(path: Path, index_command: str = "tabix -p vcf") -> str:
    """Shell commands that turn `path` (plain text or plain gzip) into a bgzipped, indexed file."""
    name = str(path)
    if file_compression(path) == "gzip":
        if name.endswith(".gz"):
            return f"gunzip {name} && bgzip {name[:-3]} && {index_command} {name}"
        target = f"{name}.bgz.gz"
        return f"zcat {name} | bgzip -c > {target} && {index_command} {target}"
    return f"bgzip {name} && {index_command} {name}.gz"


def check_vcf_compression(path: str | Path) -> None:
    """Refuse, with the commands that fix it, a VCF that cannot be indexed: plain gzip or uncompressed text.

    Region reads need an index, and tabix (and bcftools index) only index BGZF files; pysam reads a plain-gzip
    VCF only sequentially and fails on the first seek.
    """
    path = Path(path)
    try:
        compression = file_compression(path)
        if compression == "none":
            with open(path, "rb") as handle:
                head = handle.read(5)
    except OSError as err:
        raise EnpactError(f"{path}: cannot read the VCF ({err.strerror or err})") from err
    if compression == "gzip":
        raise EnpactError(f"{path}: compressed with plain gzip, not bgzip, so it cannot be indexed; recompress it "
                          f"with bgzip and index it: {bgzip_advice(path)}")
    if compression == "none" and not head.startswith(b"BCF"):
        raise EnpactError(f"{path}: VCF is not compressed; region reads need a bgzipped, indexed VCF: "
                          f"{bgzip_advice(path)} (then use {path}.gz)")


def read_sample_list(path: str | Path) -> list[str]:
    """Sample ids from a file: one per line (the first field), '#' comments and blank lines ignored."""
    lines = Path(path).read_text().splitlines()
    ids = [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]
    if not ids:
        raise EnpactError(f"{path}: no sample ids in file")
    return ids


def duplicated_header_sample(path: Path) -> str | None:
    """The first sample named twice in a text VCF's #CHROM line (htslib refuses such a file), or None."""
    try:
        with (gzip.open(path, "rt", errors="replace") if path.suffix in (".gz", ".bgz") else
              open(path, errors="replace")) as handle:
            for line in handle:
                if line.startswith("#CHROM"):
                    seen: set[str] = set()
                    for sample in line.rstrip("\n").split("\t")[9:]:
                        if sample in seen:
                            return sample
                        seen.add(sample)
                    return None
                if not line.startswith("#"):
                    return None
    except (OSError, EOFError, UnicodeDecodeError):
        return None
    return None


class VcfReader:
    """A bgzipped+indexed VCF or an indexed BCF, restricted to a list of samples."""

    def __init__(self, path: str | Path, samples: list[str] | None = None, allow_unphased: bool = False):
        self.path = Path(path)
        self.allow_unphased = allow_unphased
        if not self.path.exists():
            raise EnpactError(f"VCF not found: {self.path}")
        check_vcf_compression(self.path)
        try:
            self._vcf = pysam.VariantFile(str(self.path))
        except (OSError, ValueError, NotImplementedError) as err:
            duplicated = duplicated_header_sample(self.path)
            if duplicated:
                raise EnpactError(f"{self.path}: sample '{duplicated}' appears twice in the #CHROM header line; give "
                                  "each individual one column (e.g. bcftools reheader --samples with unique names)")
            raise EnpactError(f"{self.path}: cannot open as VCF/BCF ({err}); it must be a bgzipped, indexed VCF "
                              "(.vcf.gz + .tbi) or an indexed BCF")
        all_samples = list(self._vcf.header.samples)
        if samples is None:
            samples = all_samples
        position = {s: i for i, s in enumerate(all_samples)}
        missing = [s for s in samples if s not in position]
        if missing:
            raise EnpactError(f"{self.path}: sample '{missing[0]}' is not in the VCF ({len(missing)} requested samples missing)")
        if len(set(samples)) != len(samples):
            dup = next(s for s in samples if samples.count(s) > 1)
            raise EnpactError(f"sample '{dup}' is requested twice")
        self.samples = list(samples)
        self._columns = np.array([position[s] for s in self.samples], dtype=np.int64)
        self.contigs = list(self._vcf.header.contigs)
        self._is_bcf = self._vcf.is_bcf
        self._tabix = None
        if not self._is_bcf:
            try:
                self._tabix = pysam.TabixFile(str(self.path))
            except (OSError, ValueError) as err:
                raise EnpactError(f"{self.path}: no tabix index ({err}); run `tabix -p vcf {self.path}`")
        elif not self._vcf.index:
            raise EnpactError(f"{self.path}: BCF has no index; run `bcftools index {self.path}`")
        self._index_contigs = set(self._tabix.contigs) if self._tabix is not None else set(self._vcf.index.keys())
        self.counts = VariantCounts()

    def resolve(self, chrom: str) -> str | None:
        """This VCF's name for a chromosome, or None when the VCF has no records there."""
        names = self._index_contigs | set(self.contigs)
        try:
            name = resolve_chrom(chrom, names, f"VCF {self.path.name}")
        except EnpactError:
            return None
        return name if name in self._index_contigs else None

    def _raw_records(self, chrom: str, start: int, end: int):
        """Yield (chrom, pos1, id, ref, alt, format, sample fields) for records overlapping [start, end)."""
        if self._tabix is not None:
            for line in self._tabix.fetch(chrom, max(start, 0), end):
                fields = line.split("\t")
                yield fields
        else:
            for rec in self._vcf.fetch(chrom, max(start, 0), end):
                yield str(rec).rstrip("\n").split("\t")

    def read(self, chrom: str, start: int, end: int, genome: Genome | None = None) -> VariantTable:
        """All variants overlapping [start, end) on chrom, for the selected samples; REF checked against genome."""
        name = self.resolve(chrom)
        empty = VariantTable(chrom, np.zeros(0, np.int64), [], [], [], np.zeros((0, len(self.samples), 2), np.int16))
        if name is None:
            return empty
        pos, refs, alts, ids, gts = [], [], [], [], []
        columns = self._columns + 9
        for fields in self._raw_records(name, start, end):
            if len(fields) < 10:
                raise EnpactError(f"{self.path}: record at {fields[0]}:{fields[1]} has no genotype columns")
            fmt = fields[8].split(":")
            if fmt[0] != "GT":
                raise EnpactError(f"{self.path}: record at {fields[0]}:{fields[1]} has no GT as first FORMAT field")
            sample_fields = [fields[c] for c in columns]
            if len(fmt) > 1:
                sample_fields = [f.partition(":")[0] for f in sample_fields]
            pos.append(int(fields[1]) - 1)
            refs.append(fields[3].upper())
            alts.append(tuple(a.upper() for a in fields[4].split(",")))
            ids.append(fields[2])
            gts.append(sample_fields)
        if not pos:
            return empty
        alleles, counts = self._parse_genotypes(gts, pos, chrom)
        table = VariantTable(
            chrom=chrom,
            pos=np.array(pos, dtype=np.int64),
            ref=refs,
            alts=alts,
            ids=ids,
            alleles=alleles,
            counts=counts,
        )
        table.counts.records = len(pos)
        self._check_alleles(table)
        if genome is not None:
            check_reference(table, genome, self.path)
        self.counts.add(table.counts)
        return table

    def _parse_genotypes(self, gts: list[list[str]], pos: list[int], chrom: str) -> tuple[np.ndarray, VariantCounts]:
        """Turn GT strings (variants x samples) into an allele index array, checking phasing."""
        flat = np.array(gts, dtype=object).reshape(-1)
        uniques, inverse = np.unique(flat.astype(str), return_inverse=True)
        parsed = []
        for gt in uniques:
            try:
                parsed.append(_parse_gt(gt))
            except ValueError:
                where = int(np.flatnonzero(flat == gt)[0])
                v, s = divmod(where, len(self.samples))
                raise EnpactError(
                    f"{self.path}: malformed GT '{gt}' for sample {self.samples[s]} at {chrom}:{pos[v] + 1}"
                )
        table = np.array([(a, b) for a, b, _ in parsed], dtype=np.int16)
        unphased_het = np.array([(not ph) and a != b for a, b, ph in parsed], dtype=bool)
        alleles = table[inverse].reshape(len(gts), len(self.samples), 2)
        bad = unphased_het[inverse]
        n_unphased = int(bad.sum())
        if n_unphased and not self.allow_unphased:
            where = int(np.flatnonzero(bad)[0])
            v, s = divmod(where, len(self.samples))
            raise EnpactError(
                f"{self.path}: unphased genotype '{flat[where]}' for sample {self.samples[s]} at {chrom}:{pos[v] + 1}; "
                "phase the VCF first or pass --allow-unphased to use alleles in the order given"
            )
        return alleles, VariantCounts(unphased_calls=n_unphased, missing_calls=int((alleles == MISSING).sum()))

    def _check_alleles(self, table: VariantTable) -> None:
        """Validate allele indexes against ALT counts and count symbolic calls."""
        n_alts = np.array([len(a) for a in table.alts], dtype=np.int16)
        too_large = table.alleles > n_alts[:, None, None]
        if too_large.any():
            v, s, _ = np.argwhere(too_large)[0]
            raise EnpactError(
                f"{self.path}: GT allele index beyond the ALT alleles for sample {self.samples[s]} "
                f"at {table.chrom}:{table.pos[v] + 1}"
            )
        for v, alts in enumerate(table.alts):
            symbolic_indexes = [k for k, allele in enumerate(alts, start=1) if is_symbolic(allele)]
            if symbolic_indexes:
                table.counts.symbolic_calls += int(np.isin(table.alleles[v], symbolic_indexes).sum())

    def close(self) -> None:
        """Close the underlying files."""
        self._vcf.close()
        if self._tabix is not None:
            self._tabix.close()


def check_reference(table: VariantTable, genome: Genome, source: Path | str) -> None:
    """Raise if any REF allele differs from the FASTA (a wrong genome build), naming the first site."""
    if not len(table):
        return
    ref_len = table.ref_len
    lo, hi = int(table.pos.min()), int((table.pos + ref_len).max())
    region = genome.fetch_string(table.chrom, lo, hi)
    for p, ref in zip(table.pos.tolist(), table.ref):
        observed = region[p - lo : p - lo + len(ref)]
        if not observed:
            raise EnpactError(
                f"{source}: the variant at {table.chrom}:{p + 1} lies past the end of {table.chrom} in the FASTA "
                f"({genome.lengths[genome.resolve(table.chrom)]:,} bp): is the FASTA complete (a cut-short download "
                "or copy), and of the VCF's genome build?")
        if observed != ref and not _matches_with_n(observed, ref):
            raise EnpactError(
                f"{source}: REF allele {ref} at {table.chrom}:{p + 1} does not match the FASTA ({observed}); "
                "the VCF and FASTA are probably from different genome builds"
            )


def _matches_with_n(observed: str, ref: str) -> bool:
    """Equality that lets N in either allele match any base."""
    if len(observed) != len(ref):
        return False
    return all(a == b or a == "N" or b == "N" for a, b in zip(observed, ref))


def applied_alleles(table: VariantTable, keep_missing: bool = False) -> np.ndarray:
    """Allele indexes to apply per (variant, haplotype column): symbolic alleles become 0 (REF), and so do missing
    ones unless `keep_missing` (then they stay MISSING, for dosages to impute).

    Columns are ordered sample-major: column 2*s + h is haplotype h (0 or 1) of sample s.
    """
    alleles = table.alleles.reshape(len(table), -1).astype(np.int16, copy=True)
    if not keep_missing:
        alleles[alleles == MISSING] = 0
    for v, alts in enumerate(table.alts):
        for k, allele in enumerate(alts, start=1):
            if is_symbolic(allele):
                alleles[v][alleles[v] == k] = 0
    return alleles


# ---------------------------------------------------------------------------------------------------------
# the variants a linear model can use (linearization fits them; personalization may apply only them)

AMBIGUOUS = {frozenset("AT"), frozenset("CG")}


def missing_genotypes(alleles: np.ndarray) -> np.ndarray:
    """Which genotype calls are missing, (..., 2) allele indexes -> (...) bool: either allele '.' (so '0|.' too)."""
    return (alleles == MISSING).any(axis=-1)


def allele_copies(alleles: np.ndarray, allele: int) -> np.ndarray:
    """Copies of `allele` per individual (int8) from (..., n_samples, 2) allele indexes; MISSING for a missing
    genotype call."""
    copies = (alleles == allele).sum(axis=-1).astype(np.int8)
    copies[missing_genotypes(alleles)] = MISSING
    return copies


def impute_missing_dosages(copies: np.ndarray) -> np.ndarray:
    """(rows, individuals) allele copies with MISSING for a missing genotype -> float64 dosages, each missing one
    given its row's mean over the called individuals (the usual practice for linear genotype models: it keeps the
    allele frequency and adds no spurious covariance); NaN in a row without any call. The sums are of small
    integers, so exact: every caller gets the same bits."""
    dosages = copies.astype(np.float64)
    missing = copies == MISSING
    if missing.any():
        n_called = (~missing).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(missing, 0.0, dosages).sum(axis=1) / n_called
        dosages[missing] = np.broadcast_to(means[:, None], dosages.shape)[missing]
    return dosages


def mean_imputed_dosage(alleles: np.ndarray, allele: int) -> np.ndarray:
    """Dosages of `allele` per individual from (n_samples, 2) allele indexes, a missing genotype given the mean of
    the called individuals (`impute_missing_dosages`)."""
    return impute_missing_dosages(allele_copies(alleles, allele)[None])[0]


@dataclass(frozen=True)
class VariantFilters:
    """Which variants enter a locus's model (PredictDB defaults: biallelic SNVs, MAF >= 0.01, no A/T or C/G)."""

    maf: float = 0.01
    keep_indels: bool = False
    keep_ambiguous: bool = False
    keep_multiallelic: bool = False
    build: str = "b38"
    require_rsid: bool = False   # databases keyed by rsid: a variant without one could not be used, so not fitted
    max_missing: float = 0.1     # sites with a larger fraction of missing genotype calls are left out


def too_missing(table: VariantTable, variants: np.ndarray, filters: VariantFilters) -> np.ndarray:
    """Which of `variants` have a fraction of missing genotype calls above `filters.max_missing` (left out of linear
    models; every call missing is always above)."""
    if not len(variants) or not table.alleles.shape[1]:
        return np.zeros(len(variants), dtype=bool)
    rate = missing_genotypes(table.alleles[variants]).mean(axis=1)
    return (rate > filters.max_missing) | (rate == 1.0)


def passing_alleles(table: VariantTable, variants: np.ndarray, filters: VariantFilters
                    ) -> Iterator[tuple[int, int, np.ndarray]]:
    """(variant, ALT index, dosage over the table's samples) of every allele of `variants` that the filters let into
    a linear model; sites with more missing calls than `filters.max_missing` are left out, and a missing call gets
    the mean dosage of the called individuals (allele frequency over them). The one definition of a usable variant:
    linearization fits these, and personalization with `variants linearizable` applies only these."""
    variants = np.asarray(variants, dtype=np.int64)
    for v in variants[~too_missing(table, variants, filters)].tolist():
        ref, site_alts = table.ref[v], table.alts[v]
        if len(site_alts) > 1 and not filters.keep_multiallelic:
            continue
        if filters.require_rsid and not table.ids[v].startswith("rs"):
            continue
        alleles = table.alleles[v]  # (n_samples, 2)
        called = ~missing_genotypes(alleles)
        for k, alt in enumerate(site_alts, start=1):
            if is_symbolic(alt):
                continue
            snv = len(ref) == 1 and len(alt) == 1
            if not snv and not filters.keep_indels:
                continue
            if snv and frozenset((ref, alt)) in AMBIGUOUS and not filters.keep_ambiguous:
                continue
            dosage = mean_imputed_dosage(alleles, k)
            frequency = dosage[called].mean() / 2
            if min(frequency, 1 - frequency) < filters.maf or dosage[called].std() == 0:
                continue
            yield v, k, dosage


@dataclass(frozen=True)
class LinearizableVariants:
    """Personalize with the variants linearization will use: inside the linearization window of the locus, passing
    the filters, with allele frequencies over the linearization panel (`panel`: the VCF read for its individuals).
    Every other allele of a haplotype is taken as the reference's."""

    panel: VcfReader
    window_bp: int
    filters: VariantFilters

    def restrict(self, table: VariantTable, panel_table: VariantTable, center: int) -> VariantTable:
        """The haplotypes of `table` (same region and records as `panel_table`) with only the usable alleles."""
        if len(table) != len(panel_table) or not np.array_equal(table.pos, panel_table.pos):
            raise EnpactError(f"{self.panel.path}: the panel's records differ from the personalized samples' records "
                              f"on {table.chrom}; read both from the same VCF")
        start = window_start(center, self.window_bp)
        inside = panel_table.overlapping(start, start + self.window_bp)
        usable = np.zeros((len(table), 1 + max((len(a) for a in table.alts), default=0)), dtype=bool)
        for v, k, _dosage in passing_alleles(panel_table, inside, self.filters):
            usable[v, k] = True
        alleles = table.alleles
        if not len(alleles):
            return table
        rows = np.broadcast_to(np.arange(len(table))[:, None, None], alleles.shape)
        kept = usable[rows, np.maximum(alleles, 0)] | (alleles <= 0)
        return replace(table, alleles=np.where(kept, alleles, 0).astype(alleles.dtype))
