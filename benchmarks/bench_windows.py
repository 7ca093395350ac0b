"""Haplotype window construction rate, deduplication, and bytes stored per (locus, sample).

Simulates a human-like panel with msprime (constant Ne 10^4, mu 1.25e-8, r 1e-8; optionally exponential growth),
writes it as a phased bgzipped VCF on a random reference, and builds the 196,608 bp haplotype windows of evenly
spaced loci for all individuals, VCF reading included, on one core.

    python benchmarks/bench_windows.py                 # 500 individuals, 20 loci
    python benchmarks/bench_windows.py --quick         # 100 individuals, 5 loci
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
from measure import write_json

os.environ.setdefault("OMP_NUM_THREADS", "1")

WINDOW = 196_608
FULL_OUTPUT_BYTES = 2 * 896 * 5313 * 4  # both haplotypes, every bin and track, float32


def simulate_panel(outdir: Path, n_individuals: int, length: int, seed: int, growth: bool = False) -> tuple[Path, Path]:
    """A random reference FASTA and a phased VCF simulated with msprime (REF set from the reference)."""
    import msprime

    tag = f"{n_individuals}_{length}_{seed}_{'growth' if growth else 'constant'}"
    fasta, vcf = outdir / f"ref_{length}_{seed}.fa", outdir / f"panel_{tag}.vcf.gz"
    rng = np.random.default_rng(seed)
    sequence = np.array(list("ACGT"))[rng.integers(0, 4, length)]
    if not fasta.exists():
        with open(fasta, "w") as handle:
            handle.write(">chr1\n")
            for i in range(0, length, 60):
                handle.write("".join(sequence[i : i + 60]) + "\n")
        pysam.faidx(str(fasta))
    if vcf.exists():
        return fasta, vcf
    demography = None
    if growth:
        demography = msprime.Demography()
        demography.add_population(name="pop", initial_size=500_000, growth_rate=0.01)
        demography.add_population_parameters_change(time=500, growth_rate=0, population="pop")
        demography.add_population_parameters_change(time=500, initial_size=10_000, population="pop")
    ts = msprime.sim_ancestry(n_individuals, sequence_length=length, recombination_rate=1e-8, ploidy=2,
                              random_seed=seed, **({"demography": demography} if growth else {"population_size": 10_000}))
    ts = msprime.sim_mutations(ts, rate=1.25e-8, random_seed=seed, model=msprime.BinaryMutationModel(),
                               discrete_genome=True)
    plain = vcf.with_suffix("")
    with open(plain, "w") as handle:
        handle.write("##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n")
        handle.write(f"##contig=<ID=chr1,length={length}>\n")
        samples = [f"I{i:05d}" for i in range(n_individuals)]
        handle.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples) + "\n")
        last = -1
        for variant in ts.variants():
            pos = int(variant.site.position)
            if pos == last or pos >= length:
                continue
            last = pos
            ref = sequence[pos]
            alt = "ACGT"[("ACGT".index(ref) + 1 + rng.integers(0, 3)) % 4]
            g = variant.genotypes.reshape(-1, 2)
            gts = "\t".join(f"{a}|{b}" for a, b in g)
            handle.write(f"chr1\t{pos + 1}\t.\t{ref}\t{alt}\t.\tPASS\t.\tGT\t{gts}\n")
    pysam.tabix_index(str(plain), preset="vcf", force=True)
    return fasta, vcf


def time_windows(fasta: Path, vcf: Path, n_loci: int, length: int) -> dict:
    """Build every haplotype window of n_loci evenly spaced loci (VCF read included) and time it."""
    from enpact.genome import Genome
    from enpact.predict import iter_locus_windows
    from enpact.variants import VcfReader

    genome = Genome(fasta)
    reader = VcfReader(vcf)
    centers = np.linspace(WINDOW, length - WINDOW, n_loci).astype(int)
    loci = pd.DataFrame({"locus_id": [f"L{i}" for i in range(n_loci)], "chrom": "chr1", "center": centers})
    started = time.perf_counter()
    unique, variants = 0, 0
    for _, windows in iter_locus_windows(genome, loci, WINDOW, reader):
        unique += windows.n_unique
        variants += windows.n_variants
    seconds = time.perf_counter() - started
    haplotype_windows = n_loci * 2 * len(reader.samples)
    return {"individuals": len(reader.samples), "loci": n_loci, "variants_per_window": variants / n_loci,
            "haplotype_windows": haplotype_windows, "unique_windows": unique,
            "unique_fraction": unique / (haplotype_windows + n_loci), "seconds": seconds,
            "haplotype_windows_per_s": haplotype_windows / seconds, "built_windows_per_s": unique / seconds}


def bytes_per_locus_sample() -> dict:
    """Bytes of the personalized store per (locus, sample) against the full-output store."""
    import tempfile

    from enpact.store import PersonalizedStore, write_personalized_store

    n_loci, n_samples = 200, 500
    rng = np.random.default_rng(0)
    store = PersonalizedStore([f"L{i}" for i in range(n_loci)], [f"S{i}" for i in range(n_samples)],
                              rng.normal(size=(n_loci, n_samples, 2)).astype(np.float32),
                              rng.normal(size=n_loci).astype(np.float32), {"model": {}, "predictor": {}},
                              np.full(n_loci, 300, np.int32))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.h5"
        write_personalized_store(path, store)
        size = path.stat().st_size
    per = size / (n_loci * n_samples)
    return {"bytes_per_locus_sample": per, "full_output_bytes": FULL_OUTPUT_BYTES, "ratio": FULL_OUTPUT_BYTES / per}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--outdir", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    length = 2_000_000 if not args.quick else 1_000_000
    n_loci = 20 if not args.quick else 5
    sizes = [100, 500] if not args.quick else [100]
    results = {"window_bp": WINDOW, "panels": []}
    for n in sizes:
        for growth in (False, True):
            fasta, vcf = simulate_panel(args.outdir, n, length, seed=1, growth=growth)
            row = time_windows(fasta, vcf, n_loci, length)
            row["demography"] = "growth" if growth else "constant"
            results["panels"].append(row)
    results["storage"] = bytes_per_locus_sample()
    print("| individuals | demography | variants/window | haplotype windows | unique/total | haplotype windows/s | windows built/s |")
    print("|---|---|---|---|---|---|---|")
    for r in results["panels"]:
        print(f"| {r['individuals']} | {r['demography']} | {r['variants_per_window']:.0f} | {r['haplotype_windows']} | "
              f"{r['unique_fraction']:.3f} | {r['haplotype_windows_per_s']:.0f} | {r['built_windows_per_s']:.0f} |")
    s = results["storage"]
    print(f"\nstore: {s['bytes_per_locus_sample']:.1f} bytes per (locus, sample) vs {s['full_output_bytes']:,} for the "
          f"full output ({s['ratio']:,.0f}x fewer)")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
