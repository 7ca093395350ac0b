"""The benchmark harness: bench_twas.py's table is what run_all.py parses, and run_all.py renders RESULTS.md with
the goal table from a real (tiny) run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_run_all():
    """benchmarks/run_all.py as a module."""
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_twas_row_with_spredixcan_parses_to_the_printed_ratio():
    run_all = load_run_all()
    markdown = ("| genes x SNPs | GWAS rows | GWAS .gz MB | enpact twas wall s | CPU s | peak RSS MB | "
                "SPrediXcan.py (same inputs) | machine |\n|---|---|---|---|---|---|---|---|\n"
                "| 20,000 x 20 | 10,000,000 | 191 | 4.8 | 7.4 | 983 | 118.6 s, 1134 MB (24.5x), max abs z diff 2.1e-14 "
                "| x86_64 |")
    data = run_all.parse_twas(markdown)
    assert (data["genes"], data["snps_per_gene"], data["rows"]) == (20_000, 20, 10_000_000)
    assert (data["enpact_s"], data["spredixcan_s"], data["spredixcan_mb"]) == (4.8, 118.6, 1134.0)
    assert data["speedup"] == 24.5 and data["max_dz"] == 2.1e-14


def test_run_all_runs_the_twas_benchmark_and_renders_its_goal(tmp_path):
    out, results_md = tmp_path / "out", tmp_path / "RESULTS.md"
    out.mkdir()
    # an earlier full run on another machine: --only keeps its other sections and says where they were measured
    earlier = {"size": "full", "command": "python benchmarks/run_all.py --size full", "date": "2026-01-01 10:00 UTC",
               "machine": {"cpu": "Other CPU", "usable_cpus": 16, "gpu": ["NVIDIA H100"]},
               "versions": {"git_commit": "abc1234"},
               "benchmarks": {"dedup": {"command": "python benchmarks/bench_dedup.py --size full", "status": 0,
                                        "seconds": 5.0, "markdown": "| x |\n|---|\n| 1 |", "error": ""}}}
    (out / "results.json").write_text(json.dumps(earlier))
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--size", "quick", "--only", "twas",
                    "--outdir", str(out), "--results-md", str(results_md), "--results-json", str(out / "results.json"),
                    "--spredixcan", str(tmp_path / "absent" / "SPrediXcan.py")],
                   cwd=ROOT, check=True, capture_output=True, text=True)
    results = json.loads((out / "results.json").read_text())
    twas = results["benchmarks"]["twas"]
    assert twas["status"] == 0 and twas["size"] == "quick" and twas["commit"]
    assert twas["data"]["genes"] == 2_000 and twas["data"]["rows"] == 200_000 and twas["data"]["enpact_s"] > 0
    assert twas["data"]["spredixcan_s"] is None
    text = results_md.read_text()
    assert "## 4. TWAS vs SPrediXcan.py" in text and "| 2,000 x 20 | 200,000 |" in text
    assert "SPrediXcan.py was not run" in text
    assert "## 2. Deduplication vs sample size" in text
    assert "(5 s; commit abc1234, 2026-01-01 10:00 UTC, on Other CPU, 16 cores, NVIDIA H100)" in text
    assert set(results["benchmarks"]) == {"dedup", "twas"}
    goal = next(line for line in text.splitlines() if line.startswith("| 4. TWAS"))
    assert "**not run**" in goal and "no scratch copy of MetaXcan" in goal


def test_twas_goal_needs_20x_and_agreement_at_the_goal_size():
    run_all = load_run_all()

    def status(**changes) -> str:
        data = {"genes": 20_000, "snps_per_gene": 20, "rows": 10_000_000, "enpact_s": 4.8, "enpact_mb": 983.0,
                "spredixcan_s": 118.6, "spredixcan_mb": 1134.0, "speedup": 24.5, "max_dz": 2e-14, **changes}
        goals = run_all.check_goals({"benchmarks": {"twas": {"data": data}}}, "full")
        return next(g["status"] for g in goals if g["goal"].startswith("4. TWAS"))

    assert status() == "met"
    assert status(speedup=19.9) == "not met"
    assert status(max_dz=2e-5) == "not met"
    assert status(genes=2_000, rows=200_000) == "not evaluated"
