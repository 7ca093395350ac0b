"""Personalized predictions: EnPACT against the naive pipeline, side by side on the same loci and individuals.

Naive pipeline (implemented here, in the benchmark only): the way personalized Enformer predictions are commonly
made. For every individual, haplotype and region, in that order: build the haplotype's window itself (the
reference window with that haplotype's SNVs applied), run it through Enformer alone (batch 1, fp32), keep the
full output (all 896 target bins x all 5,313 tracks) and write it to its own HDF5 file. The region's VCF records
are read once per region (kinder to the naive side than a read per sample).

EnPACT: `enpact.personalize.personalize` (distinct windows only, batched across loci, only the central bins of
the selected tracks computed past the transformer, EnPACT model applied on the fly) and
`enpact.store.write_personalized_store`, with the predictor loaded through `enpact.predictors.load_predictor`.

Both sides load the same randomly initialised Enformer checkpoint (saved with `save_pretrained`) and run in
fresh child processes one after the other, so each one's peak RSS (ru_maxrss of that child, from os.wait4) is its
own. Model loading and one warm-up pass are excluded from the timed part on both sides; VCF reading, window
building, predictor passes, model application and writing are included (each naive file is deleted once written
and measured, for disk space: a GPU run writes tens of GB). The naive side's central-bin means are compared with
EnPACT's features to show that both computed the same thing.

On CPU a reduced Enformer (dim 48, depth 2, heads 2; 196,608 bp in, 896 x 5,313 out; its time splits over stem,
conv tower and transformer much as the full model's does) keeps the run to minutes. With `--device cuda
--full-model` the full-size architecture (dim 1536, depth 11, heads 8) runs: naive fp32 batch 1, EnPACT bf16.

Also counted, without any model (`enpact.predict.iter_locus_windows`): predictor passes at 500 individuals
(naive: 2 per individual and locus; EnPACT: distinct windows), on msprime panels (see bench_dedup.py).

    python benchmarks/bench_naive.py --size quick               # CPU, reduced model, 8 individuals x 2 loci
    python benchmarks/bench_naive.py --size full                # CPU, reduced model, 20 individuals x 3 loci
    python benchmarks/bench_naive.py --device cuda --full-model # GPU, full-size architecture, 50 x 2 (quick) or 200 x 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_windows import WINDOW, simulate_panel  # noqa: E402
from measure import run_child, write_json  # noqa: E402

N_BINS, N_TRACKS = 896, 5313
H100_BF16_BOUND_S = 0.0033  # DESIGN.md section 5
CONFIGS = {
    "reduced": {"dim": 48, "depth": 2, "heads": 2, "dim_divisible_by": 8, "target_length": N_BINS,
                "output_heads": {"human": N_TRACKS}},
    "full": {"dim": 1536, "depth": 11, "heads": 8, "target_length": N_BINS, "output_heads": {"human": N_TRACKS}},
}
SIZES = {  # CPU: individuals x loci compared, panel length; panels counted for the passes at 500 individuals
    "quick": {"individuals": 8, "loci": 2, "length": 1_000_000, "passes_length": 1_000_000, "passes_seeds": [11]},
    "full": {"individuals": 20, "loci": 3, "length": 1_000_000, "passes_length": 2_000_000, "passes_seeds": [11, 12]},
}
GPU_SIZES = {"quick": {"individuals": 50, "loci": 2}, "full": {"individuals": 200, "loci": 4}}
SCALE_LOCI = 200  # store written at 500 individuals x this many loci for the bytes goal


# ---------------------------------------------------------------------------------------------- shared set-up


def make_checkpoint(outdir: Path, config: str) -> Path:
    """A randomly initialised Enformer saved with save_pretrained (reused when present)."""
    import torch
    from enformer_pytorch import Enformer

    directory = outdir / f"naive_enformer_{config}"
    if (directory / "config.json").is_file() and (directory / "enpact_predictor.json").is_file():
        return directory
    torch.manual_seed(0)
    model = Enformer.from_hparams(**CONFIGS[config])
    staging = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging), safe_serialization=False)  # the trunk shares tensors (as the demo model)
    (staging / "enpact_predictor.json").write_text(json.dumps({"window_bp": WINDOW, "use_tf_gamma": False}))
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return directory


def loci_centers(length: int, n_loci: int) -> list[int]:
    """Centres 200 kb apart (windows do not overlap), in the middle of the panel."""
    spacing = 200_000
    first = max(WINDOW, (length - (n_loci - 1) * spacing) // 2)
    centers = [first + i * spacing for i in range(n_loci)]
    if centers[-1] > length - WINDOW:
        raise SystemExit(f"{n_loci} loci do not fit on a {length:,} bp panel")
    return centers


def peak_rss_mb() -> float:
    """This process's peak RSS in MB (Linux ru_maxrss is in kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device) -> None:
    """Wait for the GPU (no-op on CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------- naive child


def run_naive(spec: dict) -> dict:
    """The naive pipeline: haplotype by haplotype, batch 1, fp32, full output to one HDF5 file per window."""
    import h5py
    import pysam
    import torch
    import torch.nn.functional as F
    from enformer_pytorch import Enformer

    from enpact.genome import Genome, window_start

    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    model = Enformer.from_pretrained(spec["weights"], use_tf_gamma=False).eval().to(device)
    genome = Genome(spec["fasta"])
    vcf = pysam.VariantFile(spec["vcf"])
    samples = list(vcf.header.samples)[: spec["individuals"]]
    chrom, centers = spec["chrom"], spec["centers"]
    outdir = Path(spec["workdir"]) / "naive_outputs"
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    central = slice((N_BINS - 4) // 2, (N_BINS - 4) // 2 + 4)

    def forward(window: np.ndarray) -> np.ndarray:
        x = F.one_hot(torch.from_numpy(window).long().to(device), num_classes=5)[None, :, :4].float()
        with torch.inference_mode():
            out = model(x, head="human")  # (1, 896, 5313), fp32
        return out[0].float().cpu().numpy()

    forward(genome.fetch(chrom, window_start(centers[0], WINDOW), window_start(centers[0], WINDOW) + WINDOW))
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = peak_rss_mb()

    started = time.perf_counter()
    regions = []
    for center in centers:  # one VCF read per region, all samples (kinder to the naive side than one per sample)
        start = window_start(center, WINDOW)
        positions, alt_base, gts = [], [], []
        for record in vcf.fetch(chrom, start, start + WINDOW):
            if len(record.ref) != 1 or len(record.alts) != 1 or len(record.alts[0]) != 1:
                raise SystemExit("the naive baseline applies SNVs only; this panel has other variants")
            positions.append(record.pos - 1 - start)
            alt_base.append("ACGT".index(record.alts[0].upper()))
            gts.append([record.samples[s]["GT"] for s in samples])
        alleles = np.array([[[a or 0 for a in gt] for gt in row] for row in gts], dtype=np.int8).reshape(
            len(positions), len(samples), 2)
        regions.append((start, np.array(positions, dtype=np.int64), np.array(alt_base, dtype=np.uint8), alleles))
    file_bytes: set[int] = set()
    passes, written, features = 0, 0, np.zeros((len(centers), len(samples), 2, N_TRACKS), np.float32)
    for s, sample in enumerate(samples):
        for h in range(2):
            for locus, (start, positions, alt_base, alleles) in enumerate(regions):
                window = genome.fetch(chrom, start, start + WINDOW).copy()
                carried = alleles[:, s, h] > 0
                window[positions[carried]] = alt_base[carried]
                output = forward(window)
                passes += 1
                path = outdir / f"{sample}.hap{h + 1}.{chrom}_{centers[locus]}.h5"
                with h5py.File(path, "w") as handle:
                    handle.create_dataset("human", data=output)
                    handle.attrs.update({"sample": sample, "haplotype": h + 1, "chrom": chrom,
                                         "window_start": start})
                written += path.stat().st_size
                file_bytes.add(path.stat().st_size)
                path.unlink()  # disk space (a GPU run writes tens of GB); its write was timed
                features[locus, s, h] = output[central].mean(axis=0)
    sync(device)
    seconds = time.perf_counter() - started
    np.save(Path(spec["workdir"]) / "naive_features.npy", features)
    shutil.rmtree(outdir)
    return {"seconds": seconds, "passes": passes, "haplotype_windows": 2 * len(samples) * len(centers),
            "bytes_written": written, "files": passes, "bytes_per_file": max(file_bytes),
            "rss_before_mb": rss_before, "threads": torch.get_num_threads(), "precision": "fp32", "batch_size": 1,
            "gpu_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None}


# ---------------------------------------------------------------------------------------------- EnPACT child


def run_enpact(spec: dict) -> dict:
    """enpact.personalize + write_personalized_store on the same loci and individuals."""
    import dataclasses

    import pandas as pd
    import torch

    from enpact.genome import Genome, window_start
    from enpact.models import load_model
    from enpact.personalize import personalize
    from enpact.predictors import load_predictor
    from enpact.store import PersonalizedStore, write_personalized_store
    from enpact.variants import VcfReader

    torch.set_num_threads(spec["threads"])
    predictor = load_predictor("enformer", weights=spec["weights"], window_bp=WINDOW,
                               device=spec["device"], precision=spec["precision"], batch_size=spec["batch_size"],
                               use_tf_gamma=False)
    model = load_model(spec["model"])  # fitted and saved by the parent, loaded like `enpact personalize` does
    rng = np.random.default_rng(1)
    genome = Genome(spec["fasta"])
    chrom, centers = spec["chrom"], spec["centers"]
    start = window_start(centers[0], WINDOW)
    predictor.predict(genome.fetch(chrom, start, start + WINDOW)[None])  # warm-up, excluded like the naive one's
    predictor.seconds, predictor.windows_predicted = 0.0, 0
    if predictor.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(predictor.device)
    loci = pd.DataFrame({"locus_id": [f"{chrom}_{c}" for c in centers], "chrom": chrom, "center": centers,
                         "name": "x", "split": "none"})
    vcf_samples = VcfReader(spec["vcf"]).samples[: spec["individuals"]]
    rss_before = peak_rss_mb()

    started = time.perf_counter()
    store = personalize(genome, loci, VcfReader(spec["vcf"], samples=list(vcf_samples)), model, predictor,
                        save_features=True, progress=False)
    path = Path(spec["workdir"]) / "enpact_personalized.h5"
    write_personalized_store(path, dataclasses.replace(store, features=None))  # what `enpact personalize` writes
    seconds = time.perf_counter() - started

    rows = store.features.haplotype_row  # (loci, samples, 2) -> rows of the unique-window features
    np.save(Path(spec["workdir"]) / "enpact_features.npy", store.features.features[rows, 0, :])
    written = path.stat().st_size
    # the same store at 500 individuals x SCALE_LOCI loci (random values, incompressible like real predictions)
    n_big = 500
    big = PersonalizedStore([f"L{i}" for i in range(SCALE_LOCI)], [f"S{i:04d}" for i in range(n_big)],
                            rng.normal(size=(SCALE_LOCI, n_big, 2)).astype(np.float32),
                            rng.normal(size=SCALE_LOCI).astype(np.float32), store.meta,
                            np.full(SCALE_LOCI, 300, np.int32))
    big_path = Path(spec["workdir"]) / "enpact_scale.h5"
    write_personalized_store(big_path, big)
    scale_bytes = big_path.stat().st_size
    big_path.unlink()
    return {"seconds": seconds, "passes": int(predictor.windows_predicted),
            "predictor_seconds": predictor.seconds, "haplotype_windows": 2 * len(vcf_samples) * len(centers),
            "bytes_written": written, "files": 1, "bytes_at_scale": scale_bytes,
            "rss_before_mb": rss_before, "threads": torch.get_num_threads(), "precision": predictor.precision,
            "batch_size": predictor.batch_size,
            "gpu_peak_mb": (torch.cuda.max_memory_allocated(predictor.device) / 2**20
                            if predictor.device.type == "cuda" else None)}


# ---------------------------------------------------------------------------------------------- parent


def make_model(weights: Path, directory: Path) -> Path:
    """An EnPACT elastic net on random features with this predictor's feature spec (its weights do not matter
    here: applying it costs the same), saved like `enpact train` saves one."""
    from enpact.models import FeatureSpec, create_model
    from enpact.predictors.base import read_track_names

    description = {"predictor": "enformer", "weights": str(weights), "window_bp": WINDOW, "bin_bp": 128, "bins": 4,
                   "aggregate": "mean", "head": "human", "tracks": read_track_names(str(weights), "human", N_TRACKS)}
    rng = np.random.default_rng(1)
    X = rng.gamma(2.0, 1.0, size=(200, 1, N_TRACKS)).astype(np.float32)
    y = np.log1p(X[:, 0, :50]).sum(axis=1) + rng.normal(size=len(X))
    model = create_model("elastic_net", FeatureSpec.from_dict(description), folds=3, seed=0).fit(X, y)
    shutil.rmtree(directory, ignore_errors=True)
    model.save(directory)
    return directory


def run_side(kind: str, spec: dict, workdir: Path) -> dict:
    """Run one side in a fresh process; its result plus its own peak RSS (os.wait4 rusage)."""
    spec_path = workdir / f"{kind}.spec.json"
    result_path = workdir / f"{kind}.result.json"
    spec_path.write_text(json.dumps(spec))
    result_path.unlink(missing_ok=True)
    log_path = workdir / f"{kind}.log"
    run = run_child([sys.executable, __file__, "--child", kind, "--spec", str(spec_path), "--result", str(result_path)],
                    log_path, f"{kind} side")
    if not result_path.exists():
        raise SystemExit(f"{kind} side wrote no result:\n{log_path.read_text()[-2000:]}")
    result = json.loads(result_path.read_text())
    result["peak_rss_mb"] = run.peak_rss_mb
    result["cpu_seconds_total"] = run.cpu_seconds
    return result


def passes_at(outdir: Path, n_individuals: int, length: int, seeds: list[int]) -> list[dict]:
    """Predictor passes per locus at n individuals, naive vs deduplicated, for both panel demographies."""
    from bench_dedup import count_panel

    rows = []
    for growth in (False, True):
        unique = []
        for seed in seeds:
            unique += count_panel(outdir, n_individuals, length, seed, growth)["unique_per_locus"]
        naive = 2 * n_individuals * len(unique)
        rows.append({"demography": "growth" if growth else "constant", "individuals": n_individuals,
                     "loci": len(unique), "naive_passes": naive, "enpact_passes": int(sum(unique)),
                     "ratio": naive / sum(unique)})
    return rows


def compare(side: dict, naive: dict) -> dict:
    """Derived figures of one side."""
    return {"haplotype_windows_per_s": side["haplotype_windows"] / side["seconds"],
            "passes_per_s": side["passes"] / side["seconds"],
            "seconds_per_pass": side["seconds"] / side["passes"],
            "windows_per_s_ratio": (side["haplotype_windows"] / side["seconds"])
            / (naive["haplotype_windows"] / naive["seconds"])}


def markdown(result: dict) -> str:
    """Tables of the side-by-side comparison and of the pass counts at 500 individuals."""
    n, e = result["naive"], result["enpact"]

    def runs(side: dict) -> str:
        return ", ".join(f"{x:.1f}" for x in side["all_seconds"])

    setup = result["setup"]
    lines = [f"{setup['model']} Enformer on {setup['device']} ({setup['threads']} torch thread(s) per side), "
             f"{setup['individuals']} individuals x {setup['loci']} loci ({n['haplotype_windows']} haplotype windows), "
             f"{WINDOW:,} bp windows, {setup['repeats']} timed run(s) per side",
             "",
             "| | naive | EnPACT | naive / EnPACT |", "|---|---:|---:|---:|",
             f"| precision, batch | {n['precision']}, {n['batch_size']} | {e['precision']}, {e['batch_size']} | |",
             f"| wall seconds, timed part (best of: all runs) | {n['seconds']:.1f} ({runs(n)}) | "
             f"{e['seconds']:.1f} ({runs(e)}) | {n['seconds'] / e['seconds']:.2f}x |",
             f"| haplotype windows/s | {n['haplotype_windows_per_s']:.3f} | {e['haplotype_windows_per_s']:.3f} | "
             f"EnPACT = {e['windows_per_s_ratio']:.2f}x naive |",
             f"| predictor passes | {n['passes']} | {e['passes']} | {n['passes'] / e['passes']:.2f}x |",
             f"| seconds per pass | {n['seconds_per_pass']:.3f} | {e['seconds_per_pass']:.3f} | "
             f"{n['seconds_per_pass'] / e['seconds_per_pass']:.2f}x |",
             f"| files written | {n['files']} | {e['files']} | |",
             f"| bytes written | {n['bytes_written']:,} | {e['bytes_written']:,} | "
             f"{n['bytes_written'] / e['bytes_written']:,.0f}x |",
             f"| bytes at 500 individuals x {SCALE_LOCI} loci | {result['bytes_at_scale']['naive']:,} | "
             f"{result['bytes_at_scale']['enpact']:,} | {result['bytes_at_scale']['ratio']:,.0f}x |",
             f"| peak RSS MB (child process) | {n['peak_rss_mb']:.0f} | {e['peak_rss_mb']:.0f} | "
             f"{n['peak_rss_mb'] / e['peak_rss_mb']:.2f}x |",
             f"| RSS MB after model load + warm-up | {n['rss_before_mb']:.0f} | {e['rss_before_mb']:.0f} | |"]
    if n.get("gpu_peak_mb") is not None:
        lines.append(f"| GPU peak allocated MB | {n['gpu_peak_mb']:.0f} | {e['gpu_peak_mb']:.0f} | |")
    agreement = result["agreement"]
    lines += ["", f"Same computation: EnPACT's central-bin features vs the naive full output's central 4 bins, max "
                  f"relative difference {agreement['max_rel_diff']:.1e} over {agreement['values']:,} values.", "",
              "Predictor passes at 500 individuals (counts only):", "",
              "| panel | loci | naive passes | EnPACT passes | naive / EnPACT |", "|---|---:|---:|---:|---:|"]
    for r in result["passes_500"]:
        lines.append(f"| {r['demography']} | {r['loci']} | {r['naive_passes']:,} | {r['enpact_passes']:,} | "
                     f"{r['ratio']:.2f}x |")
    lines += ["", "Projected time at 500 individuals (counted passes x the seconds per pass measured above; a "
                  "projection, not a measurement):", "",
              "| panel | naive s/locus | EnPACT s/locus | naive / EnPACT |", "|---|---:|---:|---:|"]
    for r in result["projected_500"]:
        lines.append(f"| {r['demography']} | {r['naive_s_per_locus']:,.0f} | {r['enpact_s_per_locus']:,.0f} | "
                     f"{r['ratio']:.2f}x |")
    gpu = result["gpu"]
    lines.append("")
    if gpu["run"]:
        lines.append(f"GPU ({gpu['name']}): EnPACT predictor {gpu['enpact_ms_per_pass']:.2f} ms per window "
                     f"({gpu['fraction_of_h100_bound']:.2f}x the 3.3 ms H100 bf16 bound); naive "
                     f"{gpu['naive_ms_per_window']:.1f} ms per haplotype window.")
    else:
        lines.append(f"GPU part not run: {gpu['reason']}.")
    return "\n".join(lines)


def run_setup(spec: dict) -> dict:
    """Checkpoint, panel and EnPACT model (in a child, so that the parent stays small: a child forked from a
    large parent starts with the parent's RSS as its ru_maxrss)."""
    import torch

    outdir = Path(spec["outdir"])
    result = {"cuda": torch.cuda.is_available(),
              "gpu_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
              "torch": torch.__version__}
    if spec["device"].startswith("cuda") and not result["cuda"]:
        return result
    weights = make_checkpoint(outdir, spec["config"])
    fasta, vcf = simulate_panel(outdir, spec["individuals"], spec["length"], seed=3)
    model = make_model(weights, Path(spec["workdir"]) / "enpact_model")
    result.update({"weights": str(weights), "fasta": str(fasta), "vcf": str(vcf), "model": str(model)})
    return result


def main(argv: list[str] | None = None) -> int:
    """Set up, run both sides in child processes, compare, print Markdown, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("quick", "full"), default="full")
    parser.add_argument("--quick", action="store_true", help="same as --size quick")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--full-model", action="store_true", help="full-size Enformer architecture (for a GPU)")
    parser.add_argument("--individuals", type=int, help="individuals compared (default by size)")
    parser.add_argument("--loci", type=int, help="loci compared (default by size)")
    parser.add_argument("--batch-size", type=int,
                        help="EnPACT batch size (default 1 on CPU, where batching does not pay, 16 on GPU)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads, both sides (default 1: on a shared machine extra threads wait on "
                             "each other)")
    parser.add_argument("--repeats", type=int, help="timed runs per side, alternating ABBA, best kept "
                        "(default 2)")
    parser.add_argument("--outdir", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--child", choices=("setup", "naive", "enpact"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.spec.read_text())
        result = {"setup": run_setup, "naive": run_naive, "enpact": run_enpact}[args.child](spec)
        args.result.write_text(json.dumps(result))
        return 0

    size = "quick" if args.quick else args.size
    sizes = SIZES[size]
    on_gpu = args.device.startswith("cuda")
    defaults = GPU_SIZES[size] if on_gpu else sizes
    individuals = args.individuals or defaults["individuals"]
    n_loci = args.loci or defaults["loci"]
    repeats = args.repeats or 2
    outdir = args.outdir
    outdir.mkdir(parents=True, exist_ok=True)
    config = "full" if args.full_model else "reduced"
    workdir = outdir / f"naive_run_{config}_{args.device.replace(':', '')}"
    workdir.mkdir(parents=True, exist_ok=True)
    setup = run_side("setup", {"outdir": str(outdir), "config": config, "individuals": individuals,
                                "length": sizes["length"], "device": args.device, "workdir": str(workdir)}, workdir)
    if on_gpu and not setup["cuda"]:
        reason = "--device cuda was given but no CUDA device is visible on this machine"
        print(f"GPU part not run: {reason}; nothing was measured (use --device cpu for the CPU comparison)")
        write_json(args.json, {"size": size, "skipped": reason, "gpu": {"run": False, "reason": reason}})
        return 0
    centers = loci_centers(sizes["length"], n_loci)
    spec = {"model": setup["model"], "weights": setup["weights"], "fasta": setup["fasta"], "vcf": setup["vcf"],
            "chrom": "chr1", "centers": centers, "individuals": individuals, "device": args.device,
            "workdir": str(workdir), "batch_size": args.batch_size or (16 if on_gpu else 1),
            "threads": args.threads,
            "precision": "bf16" if on_gpu else "fp32"}
    print(f"naive vs EnPACT: {config} Enformer on {args.device}, {individuals} individuals x {n_loci} loci, "
          f"{repeats} run(s) per side", file=sys.stderr, flush=True)
    runs: dict[str, list[dict]] = {"naive": [], "enpact": []}
    order = [("naive", "enpact"), ("enpact", "naive")]
    for repeat in range(repeats):
        for kind in order[repeat % 2]:
            runs[kind].append(run_side(kind, spec, workdir))
            print(f"  {kind}: {runs[kind][-1]['seconds']:.1f} s for {runs[kind][-1]['passes']} passes",
                  file=sys.stderr, flush=True)
    naive = min(runs["naive"], key=lambda r: r["seconds"])
    enpact = min(runs["enpact"], key=lambda r: r["seconds"])
    for side, kind in ((naive, "naive"), (enpact, "enpact")):
        side["all_seconds"] = [r["seconds"] for r in runs[kind]]
        side["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs[kind])
    naive.update(compare(naive, naive))
    enpact.update(compare(enpact, naive))

    ours = np.load(workdir / "enpact_features.npy")
    theirs = np.load(workdir / "naive_features.npy")
    rel = np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-6)
    agreement = {"values": int(ours.size), "max_abs_diff": float(np.abs(ours - theirs).max()),
                 "max_rel_diff": float(rel.max())}
    naive_scale = naive["bytes_per_file"] * 2 * 500 * SCALE_LOCI
    bytes_at_scale = {"individuals": 500, "loci": SCALE_LOCI, "naive": naive_scale,
                      "enpact": enpact["bytes_at_scale"], "ratio": naive_scale / enpact["bytes_at_scale"]}
    print("  counting passes at 500 individuals", file=sys.stderr, flush=True)
    import logging

    logging.getLogger("msprime").setLevel(logging.WARNING)
    passes_500 = passes_at(outdir, 500, sizes["passes_length"], sizes["passes_seeds"])

    projected_500 = []
    for r in passes_500:
        naive_s = naive["seconds_per_pass"] * r["naive_passes"] / r["loci"]
        enpact_s = enpact["seconds_per_pass"] * r["enpact_passes"] / r["loci"]
        projected_500.append({"demography": r["demography"], "naive_s_per_locus": naive_s,
                              "enpact_s_per_locus": enpact_s, "ratio": naive_s / enpact_s})
    if on_gpu:
        gpu = {"run": True, "name": setup["gpu_name"],
               "enpact_ms_per_pass": 1000 * enpact["predictor_seconds"] / enpact["passes"],
               "naive_ms_per_window": 1000 * naive["seconds"] / naive["passes"],
               "full_model": bool(args.full_model), "windows_per_s_ratio": enpact["windows_per_s_ratio"]}
        gpu["fraction_of_h100_bound"] = gpu["enpact_ms_per_pass"] / (1000 * H100_BF16_BOUND_S)
    else:
        gpu = {"run": False, "reason": "no GPU requested (--device cpu); run `--device cuda --full-model` on a GPU"
               + ("" if setup["cuda"] else "; this machine has no CUDA device")}

    result = {"size": size, "setup": {"model": config, "architecture": CONFIGS[config], "device": args.device,
                                      "individuals": individuals, "loci": n_loci, "centers": centers,
                                      "panel": setup["vcf"], "window_bp": WINDOW, "machine": platform.machine(),
                                      "cpus": os.cpu_count(), "repeats": repeats, "torch": setup["torch"],
                                      "threads": args.threads},
              "naive": naive, "enpact": enpact, "agreement": agreement, "bytes_at_scale": bytes_at_scale,
              "passes_500": passes_500, "projected_500": projected_500, "gpu": gpu,
              "peak_memory_method": "ru_maxrss of each side's child process (os.wait4), spawned from a small parent; "
                                    "GPU: torch.cuda.max_memory_allocated"}
    print(markdown(result))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
