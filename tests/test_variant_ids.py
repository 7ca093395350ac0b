"""Variant ids are GTEx v8 style (chr1_12345_A_G_b38) whatever the inputs call their chromosomes.

MetaXcan's SPrediXcan.py prefixes `chr` to un-prefixed b38 weight ids but not to covariance ids, so databases with
`1_12345_A_G_b38` ids find no gene there; GWAS files harmonised to GTEx v8 match only `chr`-prefixed ids. The same
small study is run once with the demo's `chr1` naming and once with Ensembl naming (`1`, `2`, ... in the FASTA, the
annotation and the VCF): the databases, covariances and TWAS tables must be byte for byte the same, every id
`chr`-prefixed, and the covariance ids those of the weights (what SPrediXcan.py needs).
"""

from __future__ import annotations

import gzip
import sqlite3
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from enpact.cli import main
from enpact.genome import gtex_chrom
from enpact.params import demo_dir, demo_params

pytestmark = pytest.mark.slow
DEMO = demo_dir()


def test_gtex_chromosome_names():
    assert [gtex_chrom(c) for c in ("1", "chr1", "X", "chrX", "MT", "chrM", "M", "22")] == \
        ["chr1", "chr1", "chrX", "chrX", "chrM", "chrM", "chrM", "chr22"]


def ensembl_named_inputs(directory: Path) -> dict[str, str]:
    """The demo's FASTA, annotation and VCF with chromosomes named 1, 2, ..., X, MT."""
    directory.mkdir()
    rename = {f"chr{c}": str(c) for c in [*range(1, 7), "X"]} | {"chrM": "MT"}
    fasta = directory / "genome.fa"
    fasta.write_text("".join(
        f">{rename.get(line[1:].split()[0], line[1:].split()[0])}\n" if line.startswith(">") else line
        for line in (DEMO / "genome.fa").read_text().splitlines(keepends=True)))
    subprocess.run(["samtools", "faidx", str(fasta)], check=True)
    gtf = directory / "genes.gtf"
    gtf.write_text("".join(rename.get(line.split("\t")[0], "") + line[line.index("\t"):] if "\t" in line else line
                           for line in (DEMO / "genes.gtf").read_text().splitlines(keepends=True)))
    mapping = directory / "rename.txt"
    mapping.write_text("".join(f"{old}\t{new}\n" for old, new in rename.items()))
    vcf = directory / "genotypes.vcf.gz"
    subprocess.run(["bcftools", "annotate", "--rename-chrs", str(mapping), "-Oz", "-o", str(vcf),
                    str(DEMO / "genotypes.vcf.gz")], check=True)
    subprocess.run(["tabix", "-p", "vcf", str(vcf)], check=True)
    return {"fasta": str(fasta), "annotation": str(gtf), "vcf": str(vcf)}


@pytest.fixture(scope="module")
def two_namings(tmp_path_factory) -> tuple[Path, Path]:
    """The same small study run with chr1 naming and with 1 naming."""
    base = tmp_path_factory.mktemp("namings")
    expression = pd.read_csv(DEMO / "expression.tsv", sep="\t", index_col=0)
    genes = pd.read_csv(DEMO / "genes.tsv", sep="\t")
    chosen = genes[genes["chrom"].isin(["chr1", "chr2", "chr3"])].groupby("chrom").head(20)["gene_id"]
    expression.loc[expression.index.isin(chosen)].to_csv(base / "expression.tsv", sep="\t")
    (base / "samples.txt").write_text("\n".join(f"IND{i:03d}" for i in range(1, 25)) + "\n")
    study = {**demo_params(), "expression": str(base / "expression.tsv"), "samples": str(base / "samples.txt"),
             "train_chroms": "chr1", "valid_chroms": "chr2", "test_chroms": "chr3",
             "lin_folds": 5, "name": "study"}
    outdirs = []
    for name, changes in (("chr", {}), ("ensembl", {**ensembl_named_inputs(base / "ensembl"), "train_chroms": "1",
                                                     "valid_chroms": "2", "test_chroms": "3"})):
        outdir = base / name
        path = base / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**study, **changes, "outdir": str(outdir)}))
        assert main(["-q", "run", "--params", str(path), "--no-progress"]) == 0
        outdirs.append(outdir)
    return outdirs[0], outdirs[1]


def test_both_namings_give_the_same_databases_and_twas(two_namings):
    chr_named, ensembl = two_namings
    for name in ("linearized/study.db", "linearized/study.txt.gz", "linearized/study.summary.tsv", "twas/gwas.csv"):
        assert (chr_named / name).read_bytes() == (ensembl / name).read_bytes(), name
    assert len(pd.read_csv(ensembl / "twas" / "gwas.csv").dropna(subset=["zscore"])) > 10


def test_every_id_is_gtex_style_and_the_covariance_matches_the_weights(two_namings):
    _, ensembl = two_namings
    with sqlite3.connect(ensembl / "linearized" / "study.db") as connection:
        ids = [row[0] for row in connection.execute("SELECT varID FROM weights")]
    assert ids and all(i.startswith("chr") and i.endswith("_b38") and i.count("_") == 4 for i in ids)
    lines = gzip.decompress((ensembl / "linearized" / "study.txt.gz").read_bytes()).decode().splitlines()[1:]
    covariance_ids = {field for line in lines for field in line.split()[1:3]}
    # SPrediXcan.py's rule: un-prefixed b38 weight ids get `chr`, covariance ids do not; with GTEx-style ids the
    # rule changes nothing, so every covariance id is a weight id
    spredixcan_weights = {i if i.startswith("chr") or not i.endswith("_b38") else f"chr{i}" for i in ids}
    assert covariance_ids and covariance_ids <= spredixcan_weights == set(ids)
