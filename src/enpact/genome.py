"""Reference genome access and window construction as uint8 index arrays (A,C,G,T,N = 0..4)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyfaidx
import pysam

from enpact.errors import EnpactError
from enpact.io import file_compression

BASES = "ACGTN"
N_INDEX = 4

_ENCODE_TABLE = np.full(256, N_INDEX, dtype=np.uint8)
for _i, _b in enumerate("ACGT"):
    _ENCODE_TABLE[ord(_b)] = _i
    _ENCODE_TABLE[ord(_b.lower())] = _i
_DECODE_TABLE = np.frombuffer(BASES.encode(), dtype=np.uint8)


def encode(sequence: str | bytes) -> np.ndarray:
    """Encode a DNA string as uint8 indices; anything but ACGT (any case) becomes N (4)."""
    raw = sequence.encode("ascii", errors="replace") if isinstance(sequence, str) else sequence
    return _ENCODE_TABLE[np.frombuffer(raw, dtype=np.uint8)]


def decode(indices: np.ndarray) -> str:
    """Decode uint8 indices back to an upper-case DNA string."""
    return _DECODE_TABLE[np.asarray(indices, dtype=np.uint8)].tobytes().decode("ascii")


def _first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def window_start(center: int, window_bp: int) -> int:
    """0-based start of the window of length window_bp centred on a 0-based position."""
    return int(center) - window_bp // 2


MITOCHONDRION = "MT"


def bare_chrom(name: str) -> str:
    """A chromosome's name without `chr`, the mitochondrion as MT in every naming (chr1 -> 1, chrM, M -> MT): the
    key on which chromosome names of different sources match."""
    bare = name[3:] if name.startswith("chr") else name
    return MITOCHONDRION if bare.upper() in ("M", "MT") else bare


def natural_chromosome_key(chrom: str) -> tuple[int, int, str]:
    """Sort key putting 1..22 first in numeric order, then X, Y, the mitochondrion, then anything else."""
    name = bare_chrom(str(chrom))
    if name.isdigit():
        return (0, int(name), "")
    special = {"X": 1, "Y": 2, MITOCHONDRION: 3}
    return (1, special.get(name.upper(), 9), name)


def resolve_chrom(name: str, available: set[str] | list[str], source: str = "FASTA") -> str:
    """Map a chromosome name onto the naming of `available` (adds or strips `chr`, MT <-> chrM)."""
    pool = set(available)
    if name in pool:
        return name
    matches = sorted(c for c in pool if bare_chrom(c) == bare_chrom(name))
    if matches:
        return matches[0]
    example = ", ".join(sorted(pool)[:5])
    raise EnpactError(f"chromosome '{name}' is not in the {source} (it has e.g. {example}); check chromosome naming")


def gtex_chrom(name: str) -> str:
    """A chromosome as GTEx v8 variant ids name it, whatever the FASTA calls it: `chr` + the bare name, chrM for
    the mitochondrion (1 -> chr1, chrX -> chrX, MT -> chrM)."""
    bare = bare_chrom(name)
    return "chrM" if bare == MITOCHONDRION else f"chr{bare}"


class Genome:
    """An indexed FASTA, plain (read through pyfaidx) or bgzipped (read through pysam/htslib, with its .fai and
    .gzi), returning N-padded uint8 index arrays."""

    def __init__(self, fasta: str | Path):
        self.path = Path(fasta)
        if not self.path.exists():
            raise EnpactError(f"FASTA not found: {self.path}")
        if self.path.is_dir():
            raise EnpactError(f"{self.path}: is a folder; give the FASTA file")
        try:
            compression = file_compression(self.path)
        except OSError as err:
            raise EnpactError(f"{self.path}: cannot read the FASTA ({err.strerror or err})") from err
        if compression == "gzip":
            name = str(self.path)
            fix = (f"gunzip {name} && bgzip {name[:-3]} && samtools faidx {name}" if name.endswith(".gz")
                   else f"zcat {name} | bgzip -c > {name}.bgz.gz && samtools faidx {name}.bgz.gz")
            raise EnpactError(f"{self.path}: FASTA compressed with plain gzip, not bgzip, so it cannot be indexed; "
                              f"recompress it with bgzip and index it: {fix} (or use the uncompressed FASTA)")
        self._lock = threading.Lock()
        self._pysam: pysam.FastaFile | None = None
        self._fasta: pyfaidx.Fasta | None = None
        if compression == "bgzf":
            self._open_bgzf()
        else:
            try:
                self._fasta = pyfaidx.Fasta(str(self.path), as_raw=True, sequence_always_upper=True, rebuild=False)
            except (pyfaidx.FastaIndexingError, OSError, ValueError) as err:
                raise EnpactError(f"{self.path}: cannot index FASTA ({_first_line(err)}); is it a valid FASTA? "
                                  f"index it with `samtools faidx {self.path}` (the .fai sits next to it)") from err
            self.lengths: dict[str, int] = {name: len(record) for name, record in self._fasta.records.items()}

    def _open_bgzf(self) -> None:
        """Open a bgzipped FASTA with htslib (it reads the .fai and .gzi, or builds them if they are missing)."""
        try:
            self._pysam = pysam.FastaFile(str(self.path))
        except (OSError, ValueError) as err:
            raise EnpactError(f"{self.path}: cannot open the bgzipped FASTA or its index ({_first_line(err)}); "
                              f"index it with `samtools faidx {self.path}` (writes .fai and .gzi next to it)") from err
        self.lengths = dict(zip(self._pysam.references, self._pysam.lengths))

    def _bases(self, name: str, start: int, end: int) -> str:
        """Upper-case bases [start, end) of a FASTA record (0 <= start <= end <= length)."""
        if self._pysam is not None:
            with self._lock:  # an htslib file handle is not thread-safe
                return self._pysam.fetch(name, start, end).upper()
        return self._fasta[name][start:end]

    @property
    def chroms(self) -> list[str]:
        """Chromosome names in FASTA order."""
        return list(self.lengths)

    def resolve(self, chrom: str) -> str:
        """This FASTA's name for a chromosome given in any common naming."""
        return resolve_chrom(chrom, self.lengths, f"FASTA {self.path.name}")

    def fetch(self, chrom: str, start: int, end: int) -> np.ndarray:
        """Bases [start, end) of a chromosome as uint8 indices, padded with N outside the chromosome."""
        name = self.resolve(chrom)
        length = self.lengths[name]
        out = np.full(end - start, N_INDEX, dtype=np.uint8)
        lo, hi = max(start, 0), min(end, length)
        if hi > lo:
            out[lo - start : hi - start] = encode(self._bases(name, lo, hi))
        return out

    def fetch_string(self, chrom: str, start: int, end: int) -> str:
        """Upper-case reference bases [start, end) (no padding; clipped to the chromosome)."""
        name = self.resolve(chrom)
        lo, hi = max(start, 0), min(end, self.lengths[name])
        return str(self._bases(name, lo, hi)) if hi > lo else ""

    def window(self, chrom: str, center: int, window_bp: int) -> np.ndarray:
        """The reference window of length window_bp centred on a 0-based position."""
        start = window_start(center, window_bp)
        return self.fetch(chrom, start, start + window_bp)

    def windows(self, chroms: list[str], centers: np.ndarray, window_bp: int) -> np.ndarray:
        """Reference windows for many loci, shape (n, window_bp) uint8."""
        out = np.empty((len(chroms), window_bp), dtype=np.uint8)
        for i, (chrom, center) in enumerate(zip(chroms, centers)):
            out[i] = self.window(chrom, int(center), window_bp)
        return out

    def close(self) -> None:
        """Release the FASTA file handle."""
        if self._pysam is not None:
            self._pysam.close()
        if self._fasta is not None:
            self._fasta.close()
