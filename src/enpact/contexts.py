"""Contexts: several training datasets (tissues, cell types, marks) over the same individuals, one EnPACT model
each, all served by one predictor pass.

A study names them in a CSV sample sheet (parameter `contexts`; columns context, expression and optionally
annotation, annotation_format), validated against assets/schema_contexts.json as nf-schema validates it for
Nextflow. A study with a single `expression` is one unnamed context and keeps the single-context output layout.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from enpact.errors import EnpactError
from enpact.loci import check_context_name

SHEET_COLUMNS = ("context", "expression", "annotation", "annotation_format")


@dataclass(frozen=True)
class Context:
    """One training dataset: its name (None for a single-context study), matrix and feature annotation."""

    name: str | None
    expression: Path
    annotation: Path | None
    annotation_format: str


def sheet_schema() -> dict:
    """The sample sheet's JSON schema: shipped inside the package, or in assets/ of a source checkout."""
    packaged = Path(str(resources.files("enpact") / "data" / "schema_contexts.json"))
    path = packaged if packaged.is_file() else Path(__file__).resolve().parents[2] / "assets" / "schema_contexts.json"
    return json.loads(path.read_text())


def read_context_sheet(path: str | Path) -> list[dict[str, str]]:
    """The sheet's rows (empty cells left out, as nf-schema does), checked against its schema; one-line errors."""
    from jsonschema import Draft202012Validator

    path = Path(path)
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            rows = [{k: v.strip() for k, v in row.items() if k and v and v.strip()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise EnpactError(f"{path}: not a readable CSV sample sheet ({err})") from None
    unknown = [c for c in header if c not in SHEET_COLUMNS]
    if unknown:
        raise EnpactError(f"{path}: unknown column '{unknown[0]}'; the columns are {', '.join(SHEET_COLUMNS)}")
    validator = Draft202012Validator(sheet_schema())
    for error in sorted(validator.iter_errors(rows), key=lambda e: list(e.absolute_path)):
        where = list(error.absolute_path)
        line = f"line {where[0] + 2}: " if where else ""
        column = f"column '{where[1]}': " if len(where) > 1 else ""
        advice = error.schema.get("errorMessage") if error.validator in ("pattern", "enum") else None
        text = f"'{error.instance}': {advice}" if advice else error.message
        raise EnpactError(f"{path}: {line}{column}{text}")
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        if row["context"] in seen:
            raise EnpactError(f"{path}: line {number}: context '{row['context']}' is already on line "
                              f"{seen[row['context']]}; each context once")
        seen[row["context"]] = number
    return rows


def study_contexts(params: dict[str, Any]) -> list[Context]:
    """The study's contexts: the sample sheet's rows (paths relative to the sheet), or the single `expression`."""
    default_annotation = Path(params["annotation"]) if params.get("annotation") else None
    default_format = params.get("annotation_format") or "auto"
    if not params.get("contexts"):
        return [Context(None, Path(params["expression"]), default_annotation, default_format)]
    sheet = Path(params["contexts"])
    contexts = []
    for row in read_context_sheet(sheet):
        name = check_context_name(row["context"], str(sheet))
        annotation = sheet.parent / row["annotation"] if row.get("annotation") else default_annotation
        contexts.append(Context(name, sheet.parent / row["expression"], annotation,
                                row.get("annotation_format") or default_format))
    return contexts
