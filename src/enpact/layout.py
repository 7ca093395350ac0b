"""Where a run's results go: the naming rules both engines (`enpact run` and Nextflow) follow.

The Nextflow side cannot import this module; it runs the `enpact` commands that apply these rules (e.g.
`enpact twas --output-file 'twas/{gwas}.csv'`), and tests/test_nextflow_parity.py checks its publishing rules
against the functions here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from enpact.errors import EnpactError

GWAS_NAME_SUFFIXES = (".gz", ".bgz", ".bz2", ".txt", ".tsv", ".csv")


def gwas_name(path: str | Path) -> str:
    """The output name of a GWAS file: its file name without .gz/.bgz/.bz2 and .txt/.tsv/.csv suffixes."""
    name = Path(str(path)).name
    changed = True
    while changed:
        changed = False
        for suffix in GWAS_NAME_SUFFIXES:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name, changed = name[: -len(suffix)], True
    return name


def gwas_names(gwas_files: Sequence[str | Path], source: str = "parameter 'gwas'") -> list[str]:
    """Output names of GWAS files; two files with one name would overwrite each other's results: an error."""
    names = [gwas_name(path) for path in gwas_files]
    first: dict[str, str | Path] = {}
    for path, name in zip(gwas_files, names):
        if name in first:
            raise EnpactError(f"{source}: {first[name]} and {path} would both write twas/{name}.csv; "
                              "rename or link one of them under another name")
        first[name] = path
    return names


def keeps_personalized(params: dict) -> bool:
    """Whether the personalized prediction stores stay in the results (not with delete_personalized)."""
    return not params.get("delete_personalized")
