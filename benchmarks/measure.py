"""Helpers shared by the benchmark scripts: timing a child process on its own, writing a result file."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ChildRun:
    """What one child process cost: wall seconds around it, its CPU seconds and its own peak RSS."""

    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float


def run_child(command: list[str], log_path: Path, what: str, env: dict[str, str] | None = None) -> ChildRun:
    """Run a command with its output in `log_path`; rusage from os.wait4 is that child's alone (imports included).
    Exits with the log's tail if the command fails."""
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status:
        raise SystemExit(f"{what} failed:\n{log_path.read_text()[-2000:]}")
    return ChildRun(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def run_enpact(params_file: Path, threads: int) -> tuple[ChildRun, dict[str, float]]:
    """`enpact run --params FILE` in a child process with `threads` BLAS/OpenMP threads: what it cost, and the
    seconds of each step group in its pipeline_info/timings.tsv."""
    outdir = Path(json.loads(params_file.read_text())["outdir"])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    run = run_child([sys.executable, "-m", "enpact", "run", "--params", str(params_file), "--no-progress"],
                    params_file.with_name("run.log"), f"enpact run for {params_file}", env=env)
    groups: dict[str, float] = {}
    with open(outdir / "pipeline_info" / "timings.tsv") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            groups[row["group"]] = groups.get(row["group"], 0.0) + float(row["seconds"])
    return run, groups


def write_json(path: Path | None, data: object) -> None:
    """Write a benchmark's numbers (for run_all.py) when a --json path was given."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
