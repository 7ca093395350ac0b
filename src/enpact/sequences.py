"""Writing predictor input windows as FASTA (`enpact sequence`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from enpact.genome import Genome, decode
from enpact.io import atomic_path
from enpact.predict import iter_locus_windows
from enpact.variants import VcfReader


def _format_record(name: str, sequence: str, line_width: int) -> str:
    """One FASTA record with wrapped lines."""
    if line_width <= 0:
        return f">{name}\n{sequence}\n"
    lines = [sequence[i : i + line_width] for i in range(0, len(sequence), line_width)]
    return f">{name}\n" + "\n".join(lines) + "\n"


def write_window_fasta(
    out: str | Path,
    genome: Genome,
    loci: pd.DataFrame,
    window_bp: int,
    vcf: VcfReader | None,
    line_width: int = 60,
) -> int:
    """Write the reference window and every haplotype window of every locus; returns the record count."""
    samples = vcf.samples if vcf is not None else []
    n_records = 0
    with atomic_path(out, ".fa") as tmp, open(tmp, "w") as handle:
        for locus_index, windows in iter_locus_windows(genome, loci, window_bp, vcf):
            locus_id = loci["locus_id"].iloc[locus_index]
            decoded = [decode(w) for w in windows.windows]
            handle.write(_format_record(f"{locus_id}|ref|ref", decoded[0], line_width))
            n_records += 1
            for s, sample in enumerate(samples):
                for h in (0, 1):
                    row = windows.haplotype_window[s, h]
                    handle.write(_format_record(f"{locus_id}|{sample}|{h + 1}", decoded[row], line_width))
                    n_records += 1
    return n_records
