"""Shared fixtures: small genomes, VCFs written from text, a tiny Enformer checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pysam
import pytest

DEMO = Path(__file__).resolve().parents[1] / "src" / "enpact" / "data" / "demo"


def write_fasta(path: Path, chroms: dict[str, str]) -> Path:
    """Write a FASTA with 60-bp lines and index it with samtools-compatible pysam.faidx."""
    with open(path, "w") as handle:
        for name, seq in chroms.items():
            handle.write(f">{name}\n")
            for i in range(0, len(seq), 60):
                handle.write(seq[i : i + 60] + "\n")
    pysam.faidx(str(path))
    return path


def bcftools_mean_imputed_dosages(vcf: Path, samples: list[str]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """An independent reading of a biallelic VCF: per chrom_pos_ref_alt, ALT dosages from `bcftools query` with a
    genotype that has a missing allele given the mean of the called genotypes (pandas), and the site's fraction of
    missing genotypes."""
    import subprocess

    import pandas as pd

    text = subprocess.run(["bcftools", "query", "-s", ",".join(samples), "-f", "%CHROM\t%POS\t%REF\t%ALT[\t%GT]\n",
                           str(vcf)], check=True, capture_output=True, text=True).stdout
    dosages, missing_fraction = {}, {}
    for line in text.splitlines():
        chrom, pos, ref, alt, *gts = line.split("\t")
        calls = [gt.replace("/", "|").split("|") for gt in gts]
        dosage = pd.Series([np.nan if "." in call else float(call.count("1")) for call in calls])
        key = f"{chrom}_{pos}_{ref}_{alt}"
        missing_fraction[key] = float(dosage.isna().mean())
        dosages[key] = dosage.fillna(dosage.mean()).to_numpy()
    return dosages, missing_fraction


def random_sequence(length: int, seed: int) -> str:
    """A reproducible random ACGT string."""
    rng = np.random.default_rng(seed)
    return "".join(np.array(list("ACGT"))[rng.integers(0, 4, length)])


def write_vcf(path: Path, contigs: dict[str, int], samples: list[str], records: list[str]) -> Path:
    """Write a VCF from tab-separated record lines, bgzip it and build a tabix index; returns the .vcf.gz path."""
    plain = path if path.suffix == ".vcf" else path.with_suffix(".vcf")
    header = ["##fileformat=VCFv4.2", '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">']
    header += [f"##contig=<ID={c},length={n}>" for c, n in contigs.items()]
    header.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]))
    plain.write_text("\n".join(header + records) + "\n")
    out = pysam.tabix_index(str(plain), preset="vcf", force=True)
    return Path(out)


@pytest.fixture(scope="session")
def tiny_enformer(tmp_path_factory) -> Path:
    """A randomly initialised tiny Enformer saved like the real weights (save_pretrained, .bin)."""
    import torch
    from enformer_pytorch import Enformer

    torch.manual_seed(1234)
    model = Enformer.from_hparams(dim=12, depth=1, heads=1, dim_divisible_by=2, target_length=4,
                                  output_heads={"human": 8}).eval()
    # The default initialisation gives outputs constant to ~6 digits, so a test could not tell bins, tracks or
    # sequences apart; larger random weights make every output depend on its input.
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 1.2 / parameter[0].numel() ** 0.5)
    directory = tmp_path_factory.mktemp("enformer_tiny")
    model.save_pretrained(directory, safe_serialization=False)
    (directory / "enpact_predictor.json").write_text(json.dumps({"window_bp": 1024}))
    return directory


@pytest.fixture(scope="session")
def bcftools() -> str:
    """Path of bcftools; required in CI (the independent reference for haplotype sequences)."""
    found = shutil.which("bcftools")
    if not found:
        pytest.fail("bcftools is required for these tests (apt-get install bcftools)")
    return found


def demo_model(out: Path, n_train: int = 40):
    """The demo's loci (train chr1-chr3), the tiny Enformer on CPU and an elastic net fitted on the reference windows
    of the first `n_train` loci to the demo matrix's means, saved to `out`: (genome, loci, predictor)."""
    from enpact.expression import feature_means, read_expression
    from enpact.genome import Genome
    from enpact.loci import build_loci
    from enpact.models import create_model
    from enpact.models.base import FeatureSpec
    from enpact.predictors import load_predictor

    genome = Genome(DEMO / "genome.fa")
    matrix = read_expression(DEMO / "expression.tsv")
    loci, _ = build_loci(DEMO / "genes.tsv", "tsv", matrix.index.tolist(), genome.chroms, train="chr1,chr2,chr3")
    predictor = load_predictor("enformer", weights=str(DEMO / "enformer_tiny"), device="cpu", batch_size=16)
    train = loci.head(n_train)
    X = predictor.predict(genome.windows(train["chrom"].tolist(), train["center"].to_numpy(), predictor.window_bp))
    model = create_model("elastic_net", FeatureSpec.from_dict(predictor.describe()), folds=3, seed=0)
    model.fit(X, feature_means(matrix).reindex(train["locus_id"]).to_numpy())
    model.save(out)
    return genome, loci, predictor


def personalize_planned(out: Path, loci: Path, models: list[str], *, samples_file: Path | None = None,
                        variants: list[str] | tuple[str, ...] = (), options: list[str] | tuple[str, ...] = (),
                        windows_per_part: int = 10000, export_matrix: Path | None = None,
                        vcf: Path = DEMO / "genotypes.vcf.gz") -> int:
    """Personalize a loci chunk as both engines do: `enpact plan` (its distinct windows over the individuals of
    `samples_file`, or every individual of the VCF), `enpact personalize --plan --part` per part, `enpact merge
    --plan` into `out` (plan and parts next to it: OUT-stem.plan.h5, OUT-stem.partK.h5). `models`: the --model
    values (DIR, or CONTEXT=DIR each); `variants`: --variants and its filter options, given to plan and personalize
    alike; `options`: more personalize options (CPU, batch size 16 and no progress bars are set here). Returns the
    exit status of the first command that failed, 0 when `out` was written."""
    from enpact.cli import main

    window_bp = json.loads((Path(models[0].partition("=")[2] or models[0]) / "model.json").read_text())[
        "feature_spec"]["window_bp"]
    common = ["--fasta", str(DEMO / "genome.fa"), "--loci", str(loci), "--vcf", str(vcf)]
    plan = out.with_name(f"{out.stem}.plan.h5")
    status = main(["plan", *common, *(["--samples-file", str(samples_file)] if samples_file else []),
                   "--window-bp", str(window_bp), "--windows-per-part", str(windows_per_part), *variants,
                   "--out", str(plan)])
    if status:
        return status
    from enpact.plan import read_plan

    parts = []
    for k in range(read_plan(plan).n_parts):
        parts.append(out.with_name(f"{out.stem}.part{k}.h5"))
        status = main(["personalize", *common, "--plan", str(plan), "--part", str(k), "--model", *models,
                       "--device", "cpu", "--batch-size", "16", "--no-progress", *variants, *options,
                       "--out", str(parts[-1])])
        if status:
            return status
    return main(["merge", "--plan", str(plan), "--inputs", *map(str, parts), "--out", str(out),
                 *(["--export-matrix", str(export_matrix)] if export_matrix else [])])
