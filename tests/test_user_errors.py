"""Bad inputs and unusable output paths: one stderr line `enpact CMD: error: FILE: what is wrong; what to do`, exit
status 1, no traceback and no partial output (DESIGN.md section 6; issue 12, "No tracebacks").

Broken inputs are built in tmp_path from the demo data. Commands run with -q so that stderr holds only warnings and
errors; the error itself must be exactly one line.
"""

from __future__ import annotations

import errno
import re
import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pysam
import pytest
import yaml

from conftest import DEMO
from enpact.cli import main
from enpact.errors import EnpactError
from enpact.genome import Genome
from enpact.params import demo_params
from enpact.twas import GwasColumns, check_gwas_readable

GWAS_COLUMNS = ["--snp-column", "variant_id", "--effect-allele-column", "effect_allele",
                "--non-effect-allele-column", "non_effect_allele", "--zscore-column", "zscore",
                "--model-db-snp-key", "varID", "--keep-non-rsid"]


def one_line_error(argv: list[str], capsys) -> str:
    """Run the CLI (quiet), expect exit 1 with exactly one stderr line and no traceback; return that line."""
    capsys.readouterr()
    assert main(["-q", *argv]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in captured.err
    assert lines[0].startswith(f"enpact {argv[0]}: error: "), lines[0]
    return lines[0]


def listing(directory: Path) -> set[str]:
    """Every path under a folder (hidden temporary files included), relative to it."""
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


@pytest.fixture()
def loci(tmp_path) -> Path:
    """A loci table of the first three demo genes."""
    genes = pd.read_csv(DEMO / "genes.tsv", sep="\t").head(3)
    path = tmp_path / "loci.tsv"
    pd.DataFrame({"locus_id": genes["gene_id"], "chrom": genes["chrom"], "center": genes["tss"]}).to_csv(
        path, sep="\t", index=False)
    return path


def sequence_argv(loci: Path, out: Path, fasta: Path = DEMO / "genome.fa", vcf: Path | None = None) -> list[str]:
    argv = ["sequence", "--fasta", str(fasta), "--loci", str(loci), "--window-bp", "2000", "--out", str(out)]
    return argv + (["--vcf", str(vcf), "--samples", "IND001,IND002"] if vcf else [])


# ---------------------------------------------------------------------------------------------------------
# 1. VCF compressed with plain gzip, or not compressed at all


@pytest.fixture()
def plain_gzip_vcf(tmp_path) -> Path:
    """The demo VCF recompressed with plain gzip (tabix refuses to index it), with a copied .tbi next to it."""
    path = tmp_path / "plain_gzip.vcf.gz"
    with gzip.open(DEMO / "genotypes.vcf.gz", "rb") as source:
        path.write_bytes(gzip.compress(source.read()))
    shutil.copy(DEMO / "genotypes.vcf.gz.tbi", f"{path}.tbi")  # a stale index must not hide the problem
    return path


@pytest.mark.parametrize("command", ["sequence", "plan"])
def test_plain_gzip_vcf_is_refused_with_bgzip_and_tabix_advice(command, tmp_path, loci, plain_gzip_vcf, capsys):
    out = tmp_path / "out"
    argv = (sequence_argv(loci, out / "windows.fa", vcf=plain_gzip_vcf) if command == "sequence"
            else ["plan", "--fasta", str(DEMO / "genome.fa"), "--loci", str(loci), "--vcf", str(plain_gzip_vcf),
                  "--window-bp", "4096", "--out", str(out / "plan.h5")])
    before = listing(tmp_path)
    line = one_line_error(argv, capsys)
    assert f"{plain_gzip_vcf}: compressed with plain gzip, not bgzip" in line
    assert f"bgzip {tmp_path / 'plain_gzip.vcf'}" in line and f"tabix -p vcf {plain_gzip_vcf}" in line
    assert listing(tmp_path) == before


def test_uncompressed_vcf_is_refused_with_bgzip_and_tabix_advice(tmp_path, loci, capsys):
    plain = tmp_path / "plain.vcf"
    with gzip.open(DEMO / "genotypes.vcf.gz", "rb") as source:
        plain.write_bytes(source.read())
    before = listing(tmp_path)
    line = one_line_error(sequence_argv(loci, tmp_path / "windows.fa", vcf=plain), capsys)
    assert f"{plain}: VCF is not compressed" in line
    assert f"bgzip {plain} && tabix -p vcf {plain}.gz" in line
    assert listing(tmp_path) == before


def test_duplicated_vcf_sample_is_named(tmp_path, loci, capsys):
    """htslib refuses a header naming a sample twice; the message names the sample, not the file format."""
    vcf = tmp_path / "dup.vcf"
    with gzip.open(DEMO / "genotypes.vcf.gz", "rt") as source:
        lines = source.read().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("#CHROM"))
    fields = lines[header].split("\t")
    fields[10] = fields[9]  # the second individual's column gets the first's name
    lines[header] = "\t".join(fields)
    vcf.write_text("\n".join(lines) + "\n")
    pysam.tabix_compress(str(vcf), f"{vcf}.gz")
    pysam.tabix_index(f"{vcf}.gz", preset="vcf")
    line = one_line_error(sequence_argv(loci, tmp_path / "windows.fa", vcf=Path(f"{vcf}.gz")), capsys)
    assert f"sample '{fields[9]}' appears twice in the #CHROM header line" in line
    assert "cannot open as VCF/BCF" not in line


# ---------------------------------------------------------------------------------------------------------
# 2. bgzipped FASTA: supported (htslib reads it with its .fai and .gzi); plain gzip is refused with advice


def bgzip_fasta(directory: Path, index: bool = True) -> Path:
    path = directory / "genome.fa.gz"
    pysam.tabix_compress(str(DEMO / "genome.fa"), str(path), force=True)
    if index:
        pysam.faidx(str(path))  # samtools faidx: writes .fai and .gzi
    return path


def test_bgzipped_fasta_reads_the_same_sequences_as_the_plain_fasta(tmp_path, loci, capsys):
    fasta = bgzip_fasta(tmp_path)
    assert Path(f"{fasta}.gzi").exists()
    plain, packed = Genome(DEMO / "genome.fa"), Genome(fasta)
    assert packed.lengths == plain.lengths
    for chrom, length in plain.lengths.items():
        assert packed.fetch_string(chrom, 0, length) == plain.fetch_string(chrom, 0, length)
    assert (packed.fetch("chr1", -5, 20) == plain.fetch("chr1", -5, 20)).all()  # N padding unchanged
    assert (packed.fetch("chrM", 16_560, 16_600) == plain.fetch("chrM", 16_560, 16_600)).all()
    for out, source in (("packed.fa", fasta), ("plain.fa", DEMO / "genome.fa")):
        assert main(["-q", *sequence_argv(loci, tmp_path / out, source, DEMO / "genotypes.vcf.gz")]) == 0
    assert (tmp_path / "packed.fa").read_text() == (tmp_path / "plain.fa").read_text()


def test_bgzipped_fasta_without_index_is_indexed_like_a_plain_one(tmp_path):
    fasta = bgzip_fasta(tmp_path, index=False)
    assert Genome(fasta).fetch_string("chr2", 100, 110) == Genome(DEMO / "genome.fa").fetch_string("chr2", 100, 110)


def test_plain_gzip_fasta_is_refused_with_bgzip_advice(tmp_path, loci, capsys):
    fasta = tmp_path / "genome.fa.gz"
    fasta.write_bytes(gzip.compress((DEMO / "genome.fa").read_bytes()))
    before = listing(tmp_path)
    line = one_line_error(sequence_argv(loci, tmp_path / "windows.fa", fasta), capsys)
    assert f"{fasta}: FASTA compressed with plain gzip, not bgzip" in line
    assert f"bgzip {tmp_path / 'genome.fa'}" in line and f"samtools faidx {fasta}" in line
    assert listing(tmp_path) == before


# ---------------------------------------------------------------------------------------------------------
# 3. truncated or corrupt gzipped GWAS (and covariance)


def truncated(path: Path, directory: Path, size: int = 30_000) -> Path:
    out = directory / f"truncated_{path.name}"
    out.write_bytes(path.read_bytes()[:size])
    return out


@pytest.fixture()
def model(tmp_path) -> tuple[Path, Path]:
    """A PredictDB database and covariance with two genes on the first demo GWAS variants (varID keys)."""
    gwas = pd.read_csv(DEMO / "gwas.tsv.gz", sep="\t", nrows=4)
    db = tmp_path / "model.db"
    connection = sqlite3.connect(db)
    connection.execute('CREATE TABLE extra (gene TEXT, genename TEXT, "n.snps.in.model" INTEGER, '
                       '"pred.perf.R2" DOUBLE, "pred.perf.pval" DOUBLE, "pred.perf.qval" DOUBLE)')
    connection.execute("CREATE TABLE weights (gene TEXT, rsid TEXT, varID TEXT, ref_allele TEXT, eff_allele TEXT, "
                       "weight DOUBLE)")
    connection.executemany("INSERT INTO extra VALUES (?, ?, 2, 0.1, 0.01, NULL)", [("G1", "g1"), ("G2", "g2")])
    members = {"G1": gwas.iloc[:2], "G2": gwas.iloc[2:4]}
    for gene, rows in members.items():
        connection.executemany("INSERT INTO weights VALUES (?, ?, ?, ?, ?, ?)", [
            (gene, r.rsid, r.variant_id, r.non_effect_allele, r.effect_allele, 0.5) for r in rows.itertuples()])
    connection.commit()
    connection.close()
    covariance = tmp_path / "model.txt.gz"
    lines = ["GENE RSID1 RSID2 VALUE"]
    for gene, rows in members.items():
        ids = rows["variant_id"].tolist()
        lines += [f"{gene} {ids[0]} {ids[0]} 0.2", f"{gene} {ids[0]} {ids[1]} 0.05", f"{gene} {ids[1]} {ids[1]} 0.3"]
    covariance.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return db, covariance


def twas_argv(db: Path, covariance: Path, gwas: Path, out: Path) -> list[str]:
    return ["twas", "--model-db-path", str(db), "--covariance", str(covariance), "--gwas-file", str(gwas),
            *GWAS_COLUMNS, "--output-file", str(out)]


def test_truncated_gzipped_gwas_is_one_line_error(tmp_path, model, capsys):
    db, covariance = model
    assert main(["-q", *twas_argv(db, covariance, DEMO / "gwas.tsv.gz", tmp_path / "intact.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "intact.csv")) == 2  # the same command works on the intact file
    gwas = truncated(DEMO / "gwas.tsv.gz", tmp_path)
    before = listing(tmp_path)
    line = one_line_error(twas_argv(db, covariance, gwas, tmp_path / "out.csv"), capsys)
    assert f"{gwas}: truncated or corrupt gzip file" in line and "re-download or re-compress" in line
    assert listing(tmp_path) == before


def test_truncated_covariance_is_one_line_error(tmp_path, model, capsys):
    db, covariance = model
    big = tmp_path / "big.txt.gz"  # large enough that a cut leaves a valid header but no end of stream
    text = gzip.decompress(covariance.read_bytes()).decode().splitlines()
    big.write_bytes(gzip.compress(("\n".join(text + text[1:] * 3000) + "\n").encode()))
    cut = truncated(big, tmp_path, size=big.stat().st_size // 2)
    line = one_line_error(twas_argv(db, cut, DEMO / "gwas.tsv.gz", tmp_path / "out.csv"), capsys)
    assert f"{cut}: truncated or corrupt gzip file" in line
    assert not (tmp_path / "out.csv").exists()


def test_check_gwas_readable_reads_to_the_end(tmp_path):
    with gzip.open(DEMO / "gwas.tsv.gz", "rt") as handle:
        n_rows = sum(1 for _ in handle) - 1
    columns = GwasColumns(snp="variant_id", effect_allele="effect_allele", non_effect_allele="non_effect_allele",
                          zscore="zscore")
    assert check_gwas_readable(DEMO / "gwas.tsv.gz", columns) == n_rows
    assert check_gwas_readable(DEMO / "gwas.tsv.gz", ["variant_id"], block_bytes=4096) == n_rows
    plain = tmp_path / "gwas.tsv"
    plain.write_bytes(gzip.decompress((DEMO / "gwas.tsv.gz").read_bytes()))
    assert check_gwas_readable(plain) == n_rows
    cut = truncated(DEMO / "gwas.tsv.gz", tmp_path)
    with pytest.raises(EnpactError, match=f"^{cut}: truncated or corrupt gzip file .*re-download or re-compress"):
        check_gwas_readable(cut, columns)
    corrupt = tmp_path / "corrupt.tsv.gz"
    data = bytearray((DEMO / "gwas.tsv.gz").read_bytes())
    data[-6] ^= 0xFF  # the CRC of the last member
    corrupt.write_bytes(bytes(data))
    with pytest.raises(EnpactError, match=f"^{corrupt}: truncated or corrupt gzip file"):
        check_gwas_readable(corrupt)
    with pytest.raises(EnpactError, match="no column 'SNP' in the header"):
        check_gwas_readable(DEMO / "gwas.tsv.gz", GwasColumns(zscore="zscore"))


# ---------------------------------------------------------------------------------------------------------
# 4. output paths: a folder where a file goes, a file where a folder goes, a folder that cannot be written


def test_out_that_is_a_folder_is_one_line_error(tmp_path, capsys):
    out = tmp_path / "loci_out"
    out.mkdir()
    argv = ["loci", "--annotation", str(DEMO / "genes.gtf"), "--expression", str(DEMO / "expression.tsv"),
            "--fasta", str(DEMO / "genome.fa"), "--valid-chroms", "chr5", "--test-chroms", "chr6", "--out", str(out)]
    before = listing(tmp_path)
    line = one_line_error(argv, capsys)
    assert f"{out}: is a folder, not a file; give a file name for this output" in line
    assert listing(tmp_path) == before


@pytest.mark.parametrize("below", [False, True])
def test_outdir_that_is_a_file_is_one_line_error(below, tmp_path, loci, capsys):
    outdir = tmp_path / "loci.tsv" / "chunks" if below else loci
    before = listing(tmp_path)
    line = one_line_error(["chunk", "--loci", str(loci), "--outdir", str(outdir)], capsys)
    assert line.endswith(f"error: {loci}: is a file, not a folder; choose another output folder or move that "
                         "file away")
    assert listing(tmp_path) == before


def test_run_outdir_that_is_a_file_is_one_line_error(tmp_path, capsys):
    outdir = tmp_path / "results"
    outdir.write_text("not a folder\n")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({**demo_params(), "outdir": str(outdir)}))
    before = listing(tmp_path)
    line = one_line_error(["run", "--params", str(params)], capsys)
    assert line.endswith(f"error: {outdir}: is a file, not a folder; choose another output folder or move that "
                         "file away")
    assert listing(tmp_path) == before


def run_without_override(argv: list[str], capsys) -> tuple[int, str]:
    """Run the CLI so that file permissions apply: in process for a normal user; as root (who writes anywhere) in a
    subprocess without the capabilities that override permissions (setpriv)."""
    if os.geteuid() != 0:
        capsys.readouterr()
        code = main(["-q", *argv])
        return code, capsys.readouterr().err
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: read-only folders are writable")
    drop = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]
    if subprocess.run([*drop, "true"], capture_output=True).returncode != 0:
        pytest.skip("setpriv cannot drop capabilities here")
    process = subprocess.run([*drop, sys.executable, "-m", "enpact", "-q", *argv], capture_output=True, text=True,
                             timeout=120)
    return process.returncode, process.stderr


@pytest.mark.parametrize("command", ["sequence", "chunk"])
def test_read_only_outdir_is_one_line_error(command, tmp_path, loci, capsys):
    outdir = tmp_path / "locked"
    outdir.mkdir()
    outdir.chmod(0o555)
    argv = (sequence_argv(loci, outdir / "windows.fa") if command == "sequence"
            else ["chunk", "--loci", str(loci), "--outdir", str(outdir / "chunks")])
    try:
        code, err = run_without_override(argv, capsys)
        assert code == 1 and "Traceback" not in err
        assert err.strip().splitlines() == [f"enpact {command}: error: {outdir}: permission denied; make the output "
                                            "folder writable (chmod u+w) or choose another output folder"]
        assert listing(outdir) == set()
    finally:
        outdir.chmod(0o755)


def test_permission_denied_on_an_output_is_one_line_error(tmp_path, loci, capsys, monkeypatch):
    """A read-only output folder as root sees it nowhere, so the refusal of the file system is simulated."""
    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, "x.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    outdir = tmp_path / "locked"
    line = one_line_error(sequence_argv(loci, outdir / "windows.fa"), capsys)
    assert f"{outdir}: permission denied; make the output folder writable (chmod u+w) or choose another" in line
    assert not (outdir / "windows.fa").exists()


def test_permission_denied_outside_atomic_writes_is_one_line_error(tmp_path, loci, capsys, monkeypatch):
    """main() turns an OSError about a user path raised anywhere into one line (here: creating chunk folders)."""
    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    line = one_line_error(["chunk", "--loci", str(loci), "--outdir", str(tmp_path / "chunks")], capsys)
    assert line.endswith(f"error: {tmp_path}: permission denied; make the output folder writable (chmod u+w) or "
                         "choose another output folder")  # the folder in which chunks/ cannot be created


def test_other_os_errors_keep_their_traceback(tmp_path, loci, monkeypatch):
    """Only errors about user paths become one line; an I/O error or a missing internal file is not hidden."""
    def broken(self, *args, **kwargs):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/internal/resource")

    monkeypatch.setattr(Path, "mkdir", broken)
    with pytest.raises(FileNotFoundError):
        main(["-q", "chunk", "--loci", str(loci), "--outdir", str(tmp_path / "chunks")])


# ---------------------------------------------------------------------------------------------------------
# 5. parameter values refused by a schema pattern: advice instead of the raw regular expression


def test_plain_vcf_parameter_gets_bgzip_advice(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({**demo_params(), "vcf": str(tmp_path / "genotypes.vcf")}))
    line = one_line_error(["check", "--params", str(params), "--out", str(tmp_path / "params.json")], capsys)
    assert "parameter 'vcf'" in line and "bgzip" in line and "tabix -p vcf" in line and "^" not in line
    assert not (tmp_path / "params.json").exists()


def test_path_with_a_space_gets_advice(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({**demo_params(), "vcf": str(tmp_path / "my data" / "genotypes.vcf.gz")}))
    line = one_line_error(["check", "--params", str(params), "--out", str(tmp_path / "params.json")], capsys)
    assert "parameter 'vcf'" in line and "space" in line and "^" not in line
    assert not (tmp_path / "params.json").exists()


def test_a_full_disk_is_one_line_naming_the_output_folder(tmp_path, monkeypatch, capsys):
    """Issue 24: a write into an open file on a full disk (no file name in the error) ended in a traceback."""
    import dataclasses

    from enpact.steps import STEPS

    def full_disk(config):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setitem(STEPS, "database", dataclasses.replace(STEPS["database"], run=full_disk))
    chunk = tmp_path / "chunk.h5"
    chunk.write_text("x")
    assert main(["database", "--linearized", str(chunk), "--name", "db", "--outdir", str(tmp_path / "db")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert re.match(rf"enpact database: error: {re.escape(str(tmp_path / 'db'))}: no space left on the device "
                    r"\(or disk quota exceeded\) \([\d,]+ MiB free there now\); free some space", err[0])
