"""Loci: the table `locus_id, chrom, center (0-based), name, split` that every step works on."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from enpact.errors import EnpactError
from enpact.genome import bare_chrom, natural_chromosome_key
from enpact.io import atomic_path, open_text, read_table

LOCI_COLUMNS = ["locus_id", "chrom", "center", "name", "split"]
MIN_TRAIN_LOCI = 10   # loci on the train chromosomes an EnPACT model needs
STRANDS = ("+", "-", ".")   # '.': no strand (peaks); a stranded predictor reads a '-' locus's tracks on the minus strand

log = logging.getLogger(__name__)


def check_strands(strands: pd.Series, path: str | Path) -> None:
    """Every strand is +, - or . (a stranded predictor reads the tracks of the locus's strand)."""
    bad = ~strands.fillna(".").astype(str).isin(STRANDS)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise EnpactError(f"{path}: line {row + 2}: strand '{strands.iloc[row]}' is not +, - or . (write 1/-1 "
                          "strands as +/-)")


def read_loci(path: str | Path) -> pd.DataFrame:
    """Read and validate a loci table; `name` defaults to the id and `split` to 'none'."""
    loci = read_table(path, ["locus_id", "chrom", "center"], "loci table", dtype={"locus_id": str, "chrom": str})
    if loci.empty:
        raise EnpactError(f"{path}: loci table has no rows")
    centers = pd.to_numeric(loci["center"], errors="coerce")
    bad = centers.isna() | (centers < 0) | (centers % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise EnpactError(f"{path}: line {row + 2}: center '{loci['center'].iloc[row]}' is not a non-negative integer")
    loci["center"] = centers.astype(np.int64)
    duplicated = loci["locus_id"].duplicated()
    if duplicated.any():
        raise EnpactError(f"{path}: locus_id '{loci['locus_id'][duplicated].iloc[0]}' appears twice")
    if "name" not in loci.columns:
        loci["name"] = loci["locus_id"]
    if "split" not in loci.columns:
        loci["split"] = "none"
    if "strand" in loci.columns:
        check_strands(loci["strand"], path)
    loci["name"] = loci["name"].fillna(loci["locus_id"]).astype(str)
    loci["split"] = loci["split"].fillna("none").astype(str)
    extra = [c for c in loci.columns if c not in LOCI_COLUMNS]
    return loci[LOCI_COLUMNS + extra].reset_index(drop=True)


def write_loci(loci: pd.DataFrame, path: str | Path) -> None:
    """Write a loci table (tab-separated, the standard columns first)."""
    extra = [c for c in loci.columns if c not in LOCI_COLUMNS]
    with atomic_path(path) as tmp:
        loci[LOCI_COLUMNS + extra].to_csv(tmp, sep="\t", index=False)


# ---------------------------------------------------------------------------------------------------------
# Building loci from annotations (`enpact loci`)

SEX_AND_MITO = {"X", "Y", "MT", "W", "Z"}
ANNOTATION_FORMATS = ("auto", "gtf", "gff3", "tsv", "bed", "names")


def is_sex_or_mito(chrom: str) -> bool:
    """True for X, Y, W, Z and mitochondrial chromosomes in any common naming."""
    return bare_chrom(chrom).upper() in SEX_AND_MITO


def detect_annotation_format(path: Path) -> str:
    """Annotation format from the file name (.gtf, .gff/.gff3, .bed, else tsv)."""
    name = path.name.lower().removesuffix(".gz")
    for suffix, fmt in ((".gtf", "gtf"), (".gff3", "gff3"), (".gff", "gff3"), (".bed", "bed")):
        if name.endswith(suffix):
            return fmt
    return "tsv"


def _attributes_gtf(text: str) -> dict[str, str]:
    """Parse GTF attributes `key "value"; key "value";`."""
    out = {}
    for item in text.strip().split(";"):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        out.setdefault(key, value.strip().strip('"'))
    return out


def _attributes_gff3(text: str) -> dict[str, str]:
    """Parse GFF3 attributes `key=value;key=value`."""
    out = {}
    for item in text.strip().split(";"):
        if "=" in item:
            key, _, value = item.partition("=")
            out[key.strip()] = value.strip()
    return out


def read_gene_annotation(path: Path, fmt: str) -> pd.DataFrame:
    """Genes with their TSS (0-based) from GTF, GFF3 or TSV: feature_id, name, gene_type, chrom, strand, center."""
    if fmt == "tsv":
        table = read_table(path, ["gene_id", "chrom", "strand", "tss"], "gene annotation", dtype=str)
        tss = pd.to_numeric(table["tss"], errors="coerce")
        if tss.isna().any():
            row = int(np.flatnonzero(tss.isna().to_numpy())[0])
            raise EnpactError(f"{path}: line {row + 2}: tss '{table['tss'].iloc[row]}' is not an integer")
        check_strands(table["strand"], path)
        return pd.DataFrame({
            "feature_id": table["gene_id"], "name": table.get("gene_name", table["gene_id"]),
            "gene_type": table.get("gene_type", pd.Series(["NA"] * len(table))), "chrom": table["chrom"],
            "strand": table["strand"], "center": tss.astype(np.int64),
        })
    rows = []
    with open_text(path, newline=None) as handle:
        for line_number, line in enumerate(handle, start=1):
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 9:
                raise EnpactError(f"{path}: line {line_number}: expected 9 tab-separated {fmt.upper()} columns")
            if fields[2] != "gene" and not (fmt == "gff3" and fields[2].endswith("gene")):
                continue
            attrs = _attributes_gtf(fields[8]) if fmt == "gtf" else _attributes_gff3(fields[8])
            gene_id = attrs.get("gene_id") or attrs.get("ID", "").removeprefix("gene:")
            if not gene_id:
                raise EnpactError(f"{path}: line {line_number}: gene record without gene_id/ID")
            start, end, strand = int(fields[3]), int(fields[4]), fields[6] if fields[6] in ("+", "-") else "."
            rows.append((gene_id, attrs.get("gene_name") or attrs.get("Name") or gene_id,
                         attrs.get("gene_type") or attrs.get("gene_biotype") or attrs.get("biotype") or "NA",
                         fields[0], strand, end - 1 if strand == "-" else start - 1))
    if not rows:
        raise EnpactError(f"{path}: no 'gene' records found in the {fmt.upper()} file")
    return pd.DataFrame(rows, columns=["feature_id", "name", "gene_type", "chrom", "strand", "center"])


def read_peak_annotation(path: Path) -> pd.DataFrame:
    """Peaks from BED (centre = midpoint); the id is column 4, or chrom_start_end when absent."""
    table = pd.read_csv(path, sep="\t", header=None, comment="#", dtype=str)
    if table.shape[1] < 3:
        raise EnpactError(f"{path}: BED needs at least chrom, start, end columns")
    start, end = pd.to_numeric(table[1], errors="coerce"), pd.to_numeric(table[2], errors="coerce")
    if start.isna().any() or end.isna().any():
        row = int(np.flatnonzero((start.isna() | end.isna()).to_numpy())[0])
        raise EnpactError(f"{path}: line {row + 1}: start/end are not integers")
    ids = table[3] if table.shape[1] > 3 else table[0] + "_" + table[1] + "_" + table[2]
    return pd.DataFrame({"feature_id": ids, "name": ids, "gene_type": "peak", "chrom": table[0], "strand": ".",
                         "center": ((start + end) // 2).astype(np.int64)})


def peaks_from_names(names: list[str], source: str) -> pd.DataFrame:
    """Peaks encoded in feature names `chr_start_end` or `chr:start-end` (centre = midpoint)."""
    pattern = r"^(?P<chrom>.+?)[_:](?P<start>\d+)[_-](?P<end>\d+)$"
    parsed = pd.Series(names, dtype=str).str.extract(pattern)
    if parsed["chrom"].isna().any():
        bad = names[int(np.flatnonzero(parsed["chrom"].isna().to_numpy())[0])]
        raise EnpactError(f"{source}: feature name '{bad}' is not of the form chr_start_end")
    center = (parsed["start"].astype(np.int64) + parsed["end"].astype(np.int64)) // 2
    return pd.DataFrame({"feature_id": names, "name": names, "gene_type": "peak", "chrom": parsed["chrom"],
                         "strand": ".", "center": center})


def _chrom_list(value: str | list[str] | None) -> list[str] | None:
    """A comma-separated chromosome list (or list), None when not given."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    out = [c.strip() for c in items if c and c.strip()]
    return out or None


HELD_OUT_SHARE = 0.1


def default_held_out(loci_per_chrom: list[tuple[str, int]]) -> tuple[list[str], list[str]] | None:
    """(valid, test) chromosomes when none are named: whole chromosomes from the last one down, first to test until it
    holds HELD_OUT_SHARE of the loci, then to valid likewise; at least one chromosome stays for training. None with
    fewer than three chromosomes."""
    if len(loci_per_chrom) < 3:
        return None
    total = sum(n for _, n in loci_per_chrom)
    remaining = list(loci_per_chrom)
    held: list[list[str]] = []
    for _ in ("test", "valid"):
        chosen, n = [], 0
        while remaining and len(remaining) > 1 and (not chosen or n < HELD_OUT_SHARE * total):
            chrom, count = remaining.pop()
            chosen.append(chrom)
            n += count
        held.append(chosen[::-1])
    test, valid = held
    return (valid, test) if valid and test else None


def assign_splits(
    chroms: pd.Series,
    fasta_chroms: list[str],
    train: str | list[str] | None = None,
    valid: str | list[str] | None = None,
    test: str | list[str] | None = None,
) -> pd.Series:
    """Split per chromosome; with no list given, whole numbered autosomes are held out, from the last one down, until
    test and then valid each hold at least HELD_OUT_SHARE of the loci (see default_held_out).

    A missing train list (or 'all') means every numbered autosome not held out. Sex and mitochondrial chromosomes
    are excluded unless named in one of the lists; 'none' marks excluded loci.
    """
    lists = {name: _chrom_list(v) for name, v in (("train", train), ("valid", valid), ("test", test))}
    named = {bare_chrom(c) for v in lists.values() if v for c in v}
    autosomes = [c for c in fasta_chroms if bare_chrom(c).isdigit()]
    if all(v is None for v in lists.values()):
        counts = chroms.value_counts()
        held = default_held_out([(c, int(counts.get(c, 0))) for c in autosomes if counts.get(c, 0)])
        if held:
            lists["valid"], lists["test"] = held
    if lists["train"] is None or lists["train"] == ["all"]:
        held = {bare_chrom(c) for key in ("valid", "test") for c in (lists[key] or [])}
        lists["train"] = [c for c in fasta_chroms if bare_chrom(c) not in held and not is_sex_or_mito(c)
                          and (bare_chrom(c).isdigit() or bare_chrom(c) in named)]
    bare_to_split = {}
    for split in ("train", "valid", "test"):
        for c in lists[split] or []:
            if bare_chrom(c) in bare_to_split and bare_to_split[bare_chrom(c)] != split:
                raise EnpactError(f"chromosome {c} is in both the {bare_to_split[bare_chrom(c)]} and {split} lists")
            bare_to_split[bare_chrom(c)] = split
    return chroms.map(lambda c: bare_to_split.get(bare_chrom(c), "none"))


def build_loci(
    annotation: Path,
    annotation_format: str,
    feature_ids: list[str],
    fasta_chroms: list[str],
    train: str | list[str] | None = None,
    valid: str | list[str] | None = None,
    test: str | list[str] | None = None,
    gene_types: str | list[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Loci for features present in both annotation and matrix; returns (loci, dropped with reasons)."""
    from enpact.genome import resolve_chrom

    fmt = detect_annotation_format(annotation) if annotation_format == "auto" else annotation_format
    if fmt not in ANNOTATION_FORMATS:
        raise EnpactError(f"unknown annotation format '{annotation_format}' (use one of {', '.join(ANNOTATION_FORMATS)})")
    if fmt == "names":
        features = peaks_from_names(feature_ids, "expression matrix")
    elif fmt == "bed":
        features = read_peak_annotation(annotation)
    else:
        features = read_gene_annotation(annotation, fmt)
    dropped: list[tuple[str, str]] = []
    duplicated = features["feature_id"].duplicated(keep="first")
    dropped += [(f, "duplicated_in_annotation") for f in features.loc[duplicated, "feature_id"]]
    features = features[~duplicated]
    matrix_ids = pd.Index(feature_ids)
    annotation_ids = pd.Index(features["feature_id"])
    if not annotation_ids.isin(matrix_ids).any():
        unversioned = annotation_ids.str.replace(r"\.\d+$", "", regex=True)
        if pd.Index(unversioned).isin(matrix_ids.str.replace(r"\.\d+$", "", regex=True)).any():
            lookup = dict(zip(matrix_ids.str.replace(r"\.\d+$", "", regex=True), matrix_ids))
            features = features.assign(feature_id=[lookup.get(u, f) for u, f in zip(unversioned, annotation_ids)])
            log.info("matched annotation and matrix feature ids without version suffixes")
    in_matrix = features["feature_id"].isin(matrix_ids)
    dropped += [(f, "not_in_expression_matrix") for f in features.loc[~in_matrix, "feature_id"]]
    dropped += [(f, "not_in_annotation") for f in matrix_ids.difference(pd.Index(features["feature_id"]))]
    features = features[in_matrix]
    types = _chrom_list(gene_types)
    if types:
        keep = features["gene_type"].isin(types)
        dropped += [(f, "gene_type_not_selected") for f in features.loc[~keep, "feature_id"]]
        features = features[keep]
    original_chrom = features["chrom"].to_numpy()
    resolved = []
    unmatched = set()
    for chrom in features["chrom"]:
        try:
            resolved.append(resolve_chrom(chrom, fasta_chroms))
        except EnpactError:
            resolved.append(None)
            unmatched.add(chrom)
    features = features.assign(chrom=resolved)
    if unmatched and len(unmatched) == features["chrom"].isna().sum() == len(features) > 0:
        example = sorted(unmatched)[0]
        raise EnpactError(
            f"{annotation}: no annotation chromosome matches the FASTA (e.g. '{example}' vs FASTA "
            f"'{fasta_chroms[0]}'); use the same genome build and naming"
        )
    missing_chrom = features["chrom"].isna()
    dropped += [(f, "chromosome_not_in_fasta", c) for f, c in
                zip(features.loc[missing_chrom, "feature_id"], original_chrom[missing_chrom.to_numpy()])]
    features = features[~missing_chrom]
    split = assign_splits(features["chrom"], fasta_chroms, train, valid, test)
    excluded = split == "none"
    dropped += [(f, "chromosome_not_in_any_split", c) for f, c in
                zip(features.loc[excluded, "feature_id"], features.loc[excluded, "chrom"])]
    features = features.assign(split=split)[~excluded]
    if features.empty:
        raise EnpactError(f"{annotation}: no feature is in the annotation, the matrix and a split chromosome")
    order = {c: i for i, c in enumerate(fasta_chroms)}
    features = features.assign(_order=features["chrom"].map(order)).sort_values(["_order", "center"], kind="stable")
    loci = pd.DataFrame({
        "locus_id": features["feature_id"].to_numpy(), "chrom": features["chrom"].to_numpy(),
        "center": features["center"].to_numpy(np.int64), "name": features["name"].to_numpy(),
        "split": features["split"].to_numpy(), "strand": features["strand"].to_numpy(),
        "gene_type": features["gene_type"].to_numpy(),
    })
    return loci, pd.DataFrame([(*row, None)[:3] for row in dropped], columns=["feature_id", "reason", "chrom"])


def chunk_name(first: str, last: str) -> str:
    """A file-name-safe chunk name from its first and last member."""
    safe = lambda s: "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in s)  # noqa: E731
    return f"{safe(first)}--{safe(last)}"


def write_loci_chunks(loci: pd.DataFrame, loci_per_chunk: int, directory: Path) -> list[Path]:
    """Loci chunks (positional order) named from their first and last locus; chunks of an earlier chunking in the
    folder are removed."""
    if loci_per_chunk < 1:
        raise EnpactError("chunk sizes must be at least 1")
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.tsv"):
        stale.unlink()  # a changed chunk size must not leave chunks of the previous one behind
    files = []
    for start in range(0, len(loci), loci_per_chunk):
        part = loci.iloc[start : start + loci_per_chunk]
        path = directory / f"{chunk_name(part['locus_id'].iloc[0], part['locus_id'].iloc[-1])}.tsv"
        write_loci(part, path)
        files.append(path)
    return files


# ---------------------------------------------------------------------------------------------------------
# Contexts: several datasets (tissues, cell types, marks) over one union of loci

CONTEXTS_COLUMN = "contexts"   # in the union loci table: the contexts that use the locus, comma-separated
CONTEXT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_context_name(name: str, source: str) -> str:
    """A context name names files (databases, results): letters, digits, '_', '.', '-', not starting with one of
    the last three."""
    if not CONTEXT_NAME.match(name):
        raise EnpactError(f"{source}: context '{name}' must be letters, digits, '_', '.' or '-' (and start with a "
                          "letter or digit): it names the context's output files")
    return name


def union_loci(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The union of the contexts' loci tables, with the contexts that use each locus; a locus id two contexts place
    differently is an error. Other columns come from the first context that has the locus."""
    if not tables:
        raise EnpactError("no context given")
    stacked = pd.concat([t.assign(_context=name) for name, t in tables.items()], ignore_index=True)
    places = stacked.groupby("locus_id", sort=False)[["chrom", "center"]].nunique()
    conflicting = places[(places > 1).any(axis=1)]
    if len(conflicting):
        locus = conflicting.index[0]
        rows = stacked[stacked["locus_id"] == locus]
        where = "; ".join(f"{c}: {chrom}:{center}" for c, chrom, center in
                          zip(rows["_context"], rows["chrom"], rows["center"]))
        raise EnpactError(f"locus {locus} is at different places in different contexts ({where}); use one "
                          "annotation for it, or give the contexts' features different ids")
    users = stacked.groupby("locus_id", sort=False)["_context"].agg(",".join)
    union = stacked.drop_duplicates("locus_id").drop(columns="_context")
    union[CONTEXTS_COLUMN] = union["locus_id"].map(users)
    order = union["chrom"].map(natural_chromosome_key)
    union = union.assign(_order=order).sort_values(["_order", "center", "locus_id"], kind="stable")
    return union.drop(columns="_order").reset_index(drop=True)


def context_mask(loci: pd.DataFrame, contexts: list[str]) -> np.ndarray:
    """(n_contexts, n_loci) bool: which loci each context uses, from the loci table's contexts column."""
    if CONTEXTS_COLUMN not in loci.columns:
        raise EnpactError(f"the loci table has no '{CONTEXTS_COLUMN}' column; models of named contexts need the "
                          "union loci table of `enpact loci-union`")
    users = loci[CONTEXTS_COLUMN].fillna("").astype(str).str.split(",")
    mask = np.array([[name in names for names in users] for name in contexts], dtype=bool).reshape(len(contexts),
                                                                                                    len(loci))
    unknown = sorted({n for names in users for n in names if n} - set(contexts))
    if unknown:
        raise EnpactError(f"the loci table uses context '{unknown[0]}', for which no model was given")
    return mask
