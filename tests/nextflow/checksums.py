"""Checksums of the test profile's results: what `nextflow run . -profile test` publishes and `enpact run` (no
parameter file, the same study) writes must be exactly these bytes.

tests/nextflow/test_profile.md5 holds one `md5  path` line per result (paths under --outdir), after a header that
names the CPU instruction sets it was made on: the predictor's float32 kernels (MKL, oneDNN, ATen) are chosen by
instruction set, and the elastic nets turn last-bit differences into other models, so the bytes are exact for one
class of CPU. tests/test_run_e2e.py checks `enpact run` against the file, tests/nextflow/default.nf.test checks
Nextflow's published files against it. On another class of CPU, write the file anew first:

    .venv/bin/python tests/nextflow/checksums.py --write
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKSUM_FILE = ROOT / "tests" / "nextflow" / "test_profile.md5"
RESULTS = ["loci/loci.tsv", "linearized/enpact_demo.db", "linearized/enpact_demo.txt.gz",
           "linearized/enpact_demo.summary.tsv", "twas/gwas.csv", "accuracy/personalized_accuracy.tsv"]
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile")


def cpu_signature() -> str:
    """The kernel family torch dispatches to and the instruction sets that change float results."""
    import platform

    import torch

    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    present = [flag for flag in ISA_FLAGS if flag in flags]
    return " ".join([platform.machine(), torch.backends.cpu.get_cpu_capability(), *present])


def read(path: Path = CHECKSUM_FILE) -> tuple[str, dict[str, str]]:
    """(CPU signature, {result path: md5}) of a checksum file."""
    signature, sums = "", {}
    for line in path.read_text().splitlines():
        if line.startswith("# cpu:"):
            signature = line.removeprefix("# cpu:").strip()
        elif line.strip() and not line.startswith("#"):
            digest, name = line.split(None, 1)
            sums[name.strip()] = digest
    return signature, sums


def compute(outdir: Path) -> dict[str, str]:
    """md5 of each result under a run's output directory."""
    return {name: hashlib.md5((outdir / name).read_bytes()).hexdigest() for name in RESULTS}


def write(outdir: Path, path: Path = CHECKSUM_FILE) -> None:
    """Write the checksum file from a run's output directory."""
    lines = ["# md5 of the test profile's results: `nextflow run . -profile test` and `enpact run` (no --params)",
             "# write anew with: .venv/bin/python tests/nextflow/checksums.py --write",
             f"# cpu: {cpu_signature()}"]
    lines += [f"{digest}  {name}" for name, digest in compute(outdir).items()]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    """--write: run the demo with `enpact run` and record its checksums."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="run `enpact run` on the demo and write the file")
    args = parser.parse_args()
    if not args.write:
        print(CHECKSUM_FILE.read_text(), end="")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(tmp) / "results"
        subprocess.run([sys.executable, "-m", "enpact", "run", "--outdir", str(outdir), "--no-progress"], check=True)
        write(outdir)
    print(CHECKSUM_FILE.read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
