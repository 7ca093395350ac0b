"""The two engines side by side on the bundled demo: `enpact run` and `nextflow run . -profile test,venv`, one after
the other on the same machine, plus what each Nextflow task pays before its step starts (the start-up that a
cluster run of thousands of tasks pays thousands of times).

    python benchmarks/bench_engines.py --nextflow /path/to/nextflow [--outdir benchmarks/out] [--repeats 1]

Prints a markdown table for benchmarks/RESULTS.md. Needs a Nextflow executable with the nf-schema plugin.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "bin" / "enpact"
# the launcher runs the checkout's .venv, as -profile venv has it do in every task (on a host that is itself a
# container it would otherwise take the system Python)
os.environ["ENPACT_REQUIRE_VENV"] = "true"


def timed(command: list[str], cwd: Path, log: Path) -> float:
    """Wall seconds of a command (its output in log); exits with the log's tail when it fails."""
    started = time.perf_counter()
    with open(log, "wb") as handle:
        status = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - started
    if status:
        raise SystemExit(f"{' '.join(command)} failed:\n{log.read_text()[-3000:]}")
    return seconds


def start_up_seconds(args: list[str], repeats: int = 5) -> float:
    """Median wall seconds of `bin/enpact ARGS` (the launcher, the interpreter and what the command imports)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([str(LAUNCHER), *args], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def trace_tasks(outdir: Path) -> list[dict[str, str]]:
    """The rows of a run's pipeline_info/execution_trace.txt."""
    with open(outdir / "pipeline_info" / "execution_trace.txt") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def main() -> int:
    """Run both engines on the demo; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nextflow", default=os.environ.get("ENPACT_NEXTFLOW") or shutil.which("nextflow"),
                        help="the nextflow executable (default: ENPACT_NEXTFLOW or nextflow on PATH)")
    parser.add_argument("--outdir", type=Path, default=ROOT / "benchmarks" / "out" / "engines")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each engine (the median is reported)")
    args = parser.parse_args()
    if not args.nextflow:
        print("Not run: no nextflow executable (give --nextflow, set ENPACT_NEXTFLOW or put nextflow on PATH).")
        return 0
    shutil.rmtree(args.outdir, ignore_errors=True)
    args.outdir.mkdir(parents=True)
    enpact_s, nextflow_s = [], []
    for i in range(args.repeats):
        enpact_s.append(timed([str(LAUNCHER), "run", "--outdir", str(args.outdir / f"enpact{i}"), "--no-progress"],
                              ROOT, args.outdir / f"enpact{i}.log"))
        launch = args.outdir / f"launch{i}"
        launch.mkdir()
        nextflow_s.append(timed([args.nextflow, "run", str(ROOT), "-profile", "test,venv", "-ansi-log", "false",
                                 "--outdir", str(args.outdir / f"nextflow{i}")], launch, args.outdir / f"nextflow{i}.log"))
    tasks = trace_tasks(args.outdir / "nextflow0")
    versions = start_up_seconds(["--version-of", "python"])
    parse = start_up_seconds(["linearize", "--help"])
    predictor = statistics.median(
        [timed([str(ROOT / ".venv" / "bin" / "python"), "-c", "import torch, enformer_pytorch"], ROOT,
               args.outdir / "import.log") for _ in range(3)])
    wall_e, wall_n = statistics.median(enpact_s), statistics.median(nextflow_s)
    print("| engine | wall s | tasks |\n|---|---:|---:|")
    print(f"| `enpact run` (no parameter file) | {wall_e:.1f} | 1 process |")
    print(f"| `nextflow run . -profile test,venv` | {wall_n:.1f} | {len(tasks)} |")
    print(f"\nNextflow / enpact run: {wall_n / wall_e:.2f}x ({args.repeats} run(s) each, medians).")
    print(f"\nPer-task start-up: `enpact --version-of python` {versions:.2f} s (each task asks 2-3 times, for the "
          f"versions topic); `enpact linearize --help` (interpreter, launcher, the CLI and its libraries) "
          f"{parse:.2f} s; a predictor task also imports torch and enformer-pytorch (which imports transformers) "
          f"before it loads the weights: {predictor:.2f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
