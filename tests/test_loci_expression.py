"""Loci from annotations (GTF, GFF3, TSV, BED, names), chromosome splits, and expression matrix checks."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO
from enpact.cli import main
from enpact.errors import EnpactError
from enpact.expression import feature_means, read_expression
from enpact.loci import assign_splits, build_loci, read_loci

FASTA_CHROMS = ["chr1", "chr2", "chr3", "chr4", "chrX", "chrM"]


def _matrix(tmp_path, text: str, name: str = "expr.tsv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_gtf_tss_follows_strand_and_matches_the_demo_tsv():
    genes = pd.read_csv(DEMO / "genes.tsv", sep="\t")
    loci, dropped = build_loci(DEMO / "genes.gtf", "auto", genes["gene_id"].tolist(),
                               ["chr1", "chr2", "chr3", "chr4", "chr5", "chr6", "chrX", "chrM"])
    expected = genes.set_index("gene_id")["tss"]
    assert (loci.set_index("locus_id")["center"] == expected.reindex(loci["locus_id"]).to_numpy()).all()
    assert set(dropped["reason"]) == {"chromosome_not_in_any_split"}  # chrX excluded by default
    assert dict(loci["split"].value_counts()) == {"train": 160, "valid": 40, "test": 40}
    assert loci.loc[loci["split"] == "test", "chrom"].unique().tolist() == ["chr6"]


def test_gff3_tsv_and_bed_and_names(tmp_path):
    gff = tmp_path / "a.gff3"
    gff.write_text("##gff-version 3\n"
                   "1\tx\tgene\t101\t200\t.\t+\t.\tID=gene:G1;Name=A;biotype=protein_coding\n"
                   "1\tx\tmRNA\t101\t200\t.\t+\t.\tID=t1;Parent=gene:G1\n"
                   "2\tx\tgene\t301\t400\t.\t-\t.\tID=gene:G2;Name=B;biotype=lncRNA\n")
    loci, _ = build_loci(gff, "auto", ["G1", "G2"], FASTA_CHROMS, train="chr1,chr2")
    assert loci[["locus_id", "chrom", "center", "name"]].values.tolist() == [["G1", "chr1", 100, "A"],
                                                                            ["G2", "chr2", 399, "B"]]
    bed = tmp_path / "p.bed"
    bed.write_text("chr3\t1000\t1200\tpeakA\nchr4\t10\t21\tpeakB\n")
    loci, _ = build_loci(bed, "auto", ["peakA", "peakB"], FASTA_CHROMS, train="chr3", test="chr4")
    assert loci[["locus_id", "center", "split"]].values.tolist() == [["peakA", 1100, "train"], ["peakB", 15, "test"]]
    loci, _ = build_loci(bed, "names", ["chr3_1000_1200", "chr4:10-21"], FASTA_CHROMS, train="chr3", test="chr4")
    assert loci["center"].tolist() == [1100, 15]
    with pytest.raises(EnpactError, match="feature name 'bad' is not of the form chr_start_end"):
        build_loci(bed, "names", ["bad"], FASTA_CHROMS)


def test_unmatchable_chromosome_names_are_a_clear_error(tmp_path):
    tsv = tmp_path / "g.tsv"
    tsv.write_text("gene_id\tgene_name\tgene_type\tchrom\tstrand\ttss\nG1\tA\tx\tscaffold_9\t+\t5\n")
    with pytest.raises(EnpactError, match="no annotation chromosome matches the FASTA"):
        build_loci(tsv, "tsv", ["G1"], FASTA_CHROMS)


def test_strands_other_than_plus_minus_dot_are_a_clear_error(tmp_path):
    """A stranded predictor (Borzoi) reads a minus-strand locus's tracks on the minus strand: a 1/-1 strand
    column would silently read every gene on the plus strand."""
    from enpact.loci import read_loci

    tsv = tmp_path / "g.tsv"
    tsv.write_text("gene_id\tgene_name\tgene_type\tchrom\tstrand\ttss\nG1\tA\tx\tchr1\t1\t5\nG2\tB\tx\tchr1\t-1\t9\n")
    with pytest.raises(EnpactError, match=r"g.tsv: line 2: strand '1' is not \+, - or \."):
        build_loci(tsv, "tsv", ["G1", "G2"], FASTA_CHROMS)
    loci = tmp_path / "loci.tsv"
    loci.write_text("locus_id\tchrom\tcenter\tstrand\nL1\tchr1\t5\t+\nL2\tchr1\t9\t-\nL3\tchr1\t12\t.\nL4\tchr1\t15\tx\n")
    with pytest.raises(EnpactError, match="loci.tsv: line 5: strand 'x'"):
        read_loci(loci)
    gtf = tmp_path / "g.gtf"
    gtf.write_text('chr1\tt\tgene\t11\t20\t.\t?\t.\tgene_id "G1";\n')
    assert build_loci(gtf, "gtf", ["G1"], FASTA_CHROMS)[0]["strand"].tolist() == ["."]


def test_default_splits_hold_out_whole_chromosomes_and_exclude_sex_and_mito():
    chroms = pd.Series(["chr1", "chr2", "chr3", "chr4", "chrX", "chrM"])
    assert assign_splits(chroms, FASTA_CHROMS).tolist() == ["train", "train", "valid", "test", "none", "none"]
    named = assign_splits(chroms, FASTA_CHROMS, train="chr1,chrX", valid="2", test="chr3")
    assert named.tolist() == ["train", "valid", "test", "none", "train", "none"]
    with pytest.raises(EnpactError, match="chromosome 2 is in both"):
        assign_splits(chroms, FASTA_CHROMS, train="chr1,chr2", valid="2")


def test_expression_checks(tmp_path):
    ok = read_expression(_matrix(tmp_path, "NAME\tA\tB\tC\nG1\t1\tNA\t3\nG2\t2\t4\t\nG3\t1\t2\t3\n"))
    assert feature_means(ok).round(6).tolist() == [2.0, 3.0, 2.0]
    with pytest.raises(EnpactError, match=r"line 3, sample B: value 'x1' is not a number"):
        read_expression(_matrix(tmp_path, "NAME\tA\tB\nG1\t1\t2\nG2\t3\tx1\n"))
    with pytest.raises(EnpactError, match="feature 'G1' appears twice"):
        read_expression(_matrix(tmp_path, "NAME\tA\nG1\t1\nG1\t2\n"))
    for infinite in ("inf", "-Inf", "1e999"):   # issue 24: accepted before, and read as r = 0 by the accuracy step
        with pytest.raises(EnpactError, match=rf"line 3, feature G2, sample B: value '{infinite}' is infinite "
                                              r"\(1 infinite values\)"):
            read_expression(_matrix(tmp_path, f"NAME\tA\tB\nG1\t1\t2\nG2\t3\t{infinite}\n"))
    with pytest.raises(EnpactError, match="sample 'A' appears twice"):
        read_expression(_matrix(tmp_path, "NAME\tA\tA\nG1\t1\t2\n"))
    dropped = read_expression(_matrix(tmp_path, "NAME\tA\tB\nG1\t1\tNA\nG2\t2\tNA\n"))
    assert list(dropped.columns) == ["A"]
    gz = tmp_path / "e.tsv.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write("NAME A B\nG1 1 2\n")
    assert read_expression(gz).shape == (1, 2)


def test_loci_and_chunk_commands_on_the_demo(tmp_path, capsys):
    out = tmp_path / "loci.tsv"
    assert main(["loci", "--annotation", str(DEMO / "genes.tsv"), "--expression", str(DEMO / "expression.tsv"),
                 "--fasta", str(DEMO / "genome.fa"), "--train-chroms", "chr1,chr2,chr3,chr4", "--valid-chroms",
                 "chr5", "--test-chroms", "chr6,chrX", "--out", str(out)]) == 0
    loci = read_loci(out)
    assert len(loci) == 246 and (loci.loc[loci["chrom"] == "chrX", "split"] == "test").all()
    assert (tmp_path / "loci.dropped.tsv").exists()
    assert main(["chunk", "--loci", str(out), "--loci-per-chunk", "100", "--outdir", str(tmp_path / "chunks")]) == 0
    loci_files = sorted((tmp_path / "chunks").glob("*.tsv"), key=lambda p: p.name)
    assert [p.name for p in loci_files][0] == f"{loci['locus_id'].iloc[0]}--{loci['locus_id'].iloc[99]}.tsv"
    assert [len(read_loci(p)) for p in loci_files] == [100, 100, 46]
    assert pd.concat(read_loci(p) for p in loci_files)["locus_id"].tolist() == loci["locus_id"].tolist()
    assert sorted(p.name for p in (tmp_path / "chunks").iterdir()) == [p.name for p in loci_files]   # chunks only


def test_missing_expression_file_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["loci", "--annotation", str(DEMO / "genes.tsv"), "--expression", str(tmp_path / "nope.tsv"),
              "--fasta", str(DEMO / "genome.fa"), "--out", str(tmp_path / "x.tsv")])
    assert "file not found" in capsys.readouterr().err


def test_default_held_out_splits_hold_a_tenth_of_the_loci_each():
    """No split named: whole autosomes from the last one down, until test and valid each hold >= 10 % of the loci."""
    import pandas as pd

    from enpact.loci import assign_splits

    human_genes = [2000, 1300, 1100, 750, 880, 1040, 930, 690, 780, 730, 1300, 1030, 320, 610, 600, 850, 1200, 270,
                   1470, 540, 230, 440]
    chroms = pd.Series([f"chr{i}" for i, n in enumerate(human_genes, 1) for _ in range(n)] + ["chrX"] * 800)
    fasta = [f"chr{i}" for i in range(1, 23)] + ["chrX", "chrM"]
    split = assign_splits(chroms, fasta)
    autosomal = split[chroms != "chrX"]
    for name in ("valid", "test"):
        share = (autosomal == name).mean()
        assert 0.1 <= share < 0.25, (name, share)
    assert (split[chroms == "chrX"] == "none").all() and (autosomal == "train").mean() > 0.6
    per_chrom = pd.crosstab(chroms, split)
    assert ((per_chrom > 0).sum(axis=1) == 1).all()   # whole chromosomes
    assert set(chroms[split == "test"]) == {"chr19", "chr20", "chr21", "chr22"}
    few = assign_splits(pd.Series(["chr1"] * 5 + ["chr2"] * 5), ["chr1", "chr2"])
    assert set(few) == {"train"}   # two chromosomes: nothing held out (the up-front check then asks for splits)


def test_expression_matrices_as_pandas_and_r_write_them(tmp_path):
    """Issue 24: pandas' to_csv (empty row-name field) gave a traceback, R's write.table (no row-name field, quoted
    names) lost every sample match."""
    expected = pd.DataFrame([[1.0, 2.0], [3.0, np.nan]], index=["G1", "G2"], columns=["IND1", "IND2"])
    expected.to_csv(tmp_path / "pandas.tsv", sep="\t")
    written = {"pandas.tsv": None,
               "r_default.txt": '"IND1" "IND2"\n"G1" 1 2\n"G2" 3 NA\n',
               "r_tab.tsv": '"IND1"\t"IND2"\n"G1"\t1\t2\n"G2"\t3\tNA\n',
               "plain.tsv": "NAME\tIND1\tIND2\nG1\t1\t2\nG2\t3\tNA\n"}
    for name, text in written.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        matrix = read_expression(tmp_path / name)
        pd.testing.assert_frame_equal(matrix, expected, check_names=False, obj=name)
    (tmp_path / "ragged.tsv").write_text("NAME\tIND1\tIND2\tIND3\tIND4\nG1\t1\t2\n")
    with pytest.raises(EnpactError, match="the header has 5 fields and line 2 has 3"):
        read_expression(tmp_path / "ragged.tsv")
