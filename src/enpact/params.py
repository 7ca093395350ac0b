"""Pipeline parameters: one schema (nextflow_schema.json) for `enpact run --params` and `nextflow run -params-file`."""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from enpact.errors import EnpactError
from enpact.layout import gwas_names

log = logging.getLogger(__name__)

# Parameters that only the Nextflow engine uses; `enpact run` accepts and ignores them.
NEXTFLOW_ONLY = {"use_gpu", "gpu_queue", "cpu_queue", "publish_dir_mode", "help", "validate_params",
                 "monochrome_logs", "gpu_type", "gpu_container", "cpu_container", "cluster_options",
                 "gpu_cluster_options"}
# Parameters that institutional configs (nf-core/configs, loaded with -c) set for every pipeline; Nextflow hands
# them to ENPACT_CHECK with the rest, which accepts and ignores them.
INSTITUTIONAL_PARAMS = {"config_profile_name", "config_profile_description", "config_profile_contact",
                        "config_profile_url", "custom_config_version", "custom_config_base"}
# Parameters that earlier versions took and this one no longer does: why, and what to use instead. A parameter file
# that still sets one is refused with the reason (by both engines), not silently ignored.
REMOVED_PARAMS = {
    "samples_per_chunk": "personalization now plans the distinct haplotype windows over every individual at once "
                         "(enpact plan), so individuals are no longer split in chunks; windows_per_part sizes the "
                         "predictor tasks",
}
PATH_PARAMS = ("fasta", "annotation", "expression", "contexts", "vcf", "samples", "covariance_vcf", "covariance_samples",
               "select_variants", "select_regions", "truth_causal_genes")
DEMO_DIR_NAME = "demo"


def schema_path() -> Path:
    """nextflow_schema.json: shipped inside the package, or at the root of a source checkout."""
    packaged = Path(str(resources.files("enpact") / "data" / "nextflow_schema.json"))
    if packaged.is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "nextflow_schema.json"
    if checkout.is_file():
        return checkout
    raise EnpactError("nextflow_schema.json not found in the package or the source checkout; reinstall enpact")


def load_schema() -> dict:
    """The parameter schema."""
    return json.loads(schema_path().read_text())


def schema_properties(schema: dict) -> dict[str, dict]:
    """All parameter definitions, flattened over the schema's groups."""
    properties = dict(schema.get("properties", {}))
    for group in schema.get("$defs", schema.get("definitions", {})).values():
        properties.update(group.get("properties", {}))
    return properties


def schema_defaults(schema: dict) -> dict[str, Any]:
    """Default value of every parameter that has one."""
    return {name: spec["default"] for name, spec in schema_properties(schema).items() if "default" in spec}


class ParamsLoader(yaml.SafeLoader):
    """YAML as users write numbers: `5e-8` and `1e-300` are floats (YAML 1.1, and so PyYAML, needs `5.0e-8`)."""


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def read_params_file(path: Path) -> dict[str, Any]:
    """A YAML or JSON parameter file as a dict (one-line errors)."""
    if not path.exists():
        raise EnpactError(f"parameter file not found: {path}")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=ParamsLoader)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0]
        where = ""
        mark = getattr(err, "problem_mark", None)
        if mark is not None:
            where = f" (line {mark.line + 1})"
        elif isinstance(err, json.JSONDecodeError):
            where = f" (line {err.lineno})"
        raise EnpactError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}{where}: {first}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise EnpactError(f"{path}: expected a mapping of parameter names to values")
    return data


def validate_params(params: dict[str, Any], schema: dict, source: str) -> None:
    """Check names, types, enums and ranges against the schema; the first problem is one line naming it."""
    from jsonschema import Draft202012Validator

    known = schema_properties(schema)
    for name in params:
        if name in REMOVED_PARAMS and name not in known:
            raise EnpactError(f"{source}: parameter '{name}' was removed: {REMOVED_PARAMS[name]}; delete it")
        if name not in known and name not in NEXTFLOW_ONLY | INSTITUTIONAL_PARAMS:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise EnpactError(f"{source}: unknown parameter '{name}'{hint}")
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        name = ".".join(str(p) for p in error.absolute_path) or (error.validator_value[0]
                                                                 if error.validator == "required" else "?")
        raise EnpactError(f"{source}: parameter '{name}': {schema_error_text(error, name)}")


def schema_error_text(error, name: str) -> str:
    """The validator's message; for a path that a `pattern` refuses, what is wrong and what to do instead of the
    regular expression (the schema's `errorMessage`, which nf-schema prints too)."""
    value = error.instance
    if error.validator != "pattern" or not isinstance(value, str):
        return error.message
    if str(error.schema.get("format", "")).endswith("path") and any(c.isspace() for c in value):
        return (f"'{value}' contains a space; paths with spaces are not supported (Nextflow puts file names into "
                "shell commands); rename it, or link it from a path without spaces (ln -s)")
    if name == "vcf" and value.endswith(".vcf"):
        return (f"'{value}' is not compressed; a bgzipped, indexed VCF/BCF is needed: "
                f"bgzip {value} && tabix -p vcf {value}.gz, then give {value}.gz")
    advice = error.schema.get("errorMessage")
    return f"'{value}': {advice}" if advice else error.message


def resolve_gwas_files(value: str | list[str] | None) -> list[str]:
    """GWAS files from one path, a comma-separated list, or a list."""
    if not value:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def check_param_rules(params: dict[str, Any], source: str) -> None:
    """Rules across parameters that the schema cannot express; both engines apply them before any step runs."""
    if params.get("contexts") and params.get("expression"):
        raise EnpactError(f"{source}: parameters 'contexts' and 'expression' both name training data; give the "
                          "contexts sample sheet alone (a single expression is one context)")
    required = ["fasta", "vcf"] + ([] if params.get("contexts") else ["expression"])
    if params.get("annotation_format") != "names" and not params.get("contexts"):
        required.append("annotation")
    for name in required:
        if not params.get(name):
            hint = {"annotation": " (or annotation_format: names, for peak ids chr_start_end)",
                    "expression": " (or contexts, a sample sheet of several)"}.get(name, "")
            raise EnpactError(f"{source}: parameter '{name}' is required{hint}")
    gwas_files = resolve_gwas_files(params.get("gwas"))
    if params.get("lin_gwas_pvalue") is not None and not gwas_files:
        raise EnpactError(f"{source}: parameter 'lin_gwas_pvalue' selects loci near GWAS signals and needs 'gwas'")
    gwas_names(gwas_files, f"{source}: parameter 'gwas'")
    if gwas_files and params.get("snp_key", "varID") == "varID" and not params.get("gwas_keep_non_rsid"):
        raise EnpactError(f"{source}: parameter 'gwas_keep_non_rsid' must be true with snp_key varID: GWAS ids "
                          "without 'rs' are dropped otherwise, and varIDs have none")
    from enpact.models.base import check_hyperparameters, parse_hyperparameters
    from enpact.registry import MODELS, PREDICTORS

    for name, registry in (("predictor", PREDICTORS), ("model_type", MODELS)):
        if params.get(name):
            try:
                registry.check(params[name])
            except EnpactError as err:
                raise EnpactError(f"{source}: parameter '{name}': {err}") from None
    try:
        check_hyperparameters(params.get("model_type") or "elastic_net",
                              parse_hyperparameters(params.get("model_hyperparameters")))
    except EnpactError as err:
        raise EnpactError(f"{source}: parameter 'model_hyperparameters': {err}") from None


def check_input_files(params: dict[str, Any], source: str) -> None:
    """Every input file parameter that is set must exist (one line naming the parameter)."""
    for name in PATH_PARAMS:
        value = params.get(name)
        if value and not Path(value).exists():
            raise EnpactError(f"{source}: parameter '{name}': file not found: {value}")
    if params.get("contexts"):
        check_context_files(params)
    for gwas in resolve_gwas_files(params.get("gwas")):
        if not Path(gwas).exists():
            raise EnpactError(f"{source}: parameter 'gwas': file not found: {gwas}")
        check_gwas_columns(gwas, params, source)
        from enpact.twas import check_gwas_readable

        check_gwas_readable(gwas)   # to its end: a truncated download is found before any step runs
    weights = params.get("weights")
    if weights and weights.startswith((".", "/", "~")) and not Path(weights).exists():  # a path, not a hub id
        raise EnpactError(f"{source}: parameter 'weights': directory not found: {weights}")


def check_context_files(params: dict[str, Any]) -> None:
    """Every file the contexts sample sheet names exists, and each context has an annotation (its own, the
    'annotation' parameter, or feature names)."""
    from enpact.contexts import study_contexts

    sheet = params["contexts"]
    for context in study_contexts(params):
        if not context.expression.exists():
            raise EnpactError(f"{sheet}: context {context.name}: expression file not found: {context.expression}")
        if context.annotation is None and context.annotation_format != "names":
            raise EnpactError(f"{sheet}: context {context.name} has no annotation: give one in its row, the "
                              "'annotation' parameter, or annotation_format names for peak ids chr_start_end")
        if context.annotation is not None and not context.annotation.exists():
            raise EnpactError(f"{sheet}: context {context.name}: annotation file not found: {context.annotation}")


GWAS_COLUMN_PARAMS = ("gwas_snp_column", "gwas_effect_allele_column", "gwas_non_effect_allele_column",
                      "gwas_beta_column", "gwas_se_column", "gwas_zscore_column", "gwas_pvalue_column",
                      "gwas_or_column")


def check_gwas_columns(gwas: str, params: dict[str, Any], source: str) -> None:
    """Every GWAS column named in the parameters must be in the GWAS file's header (checked before running)."""
    from enpact.io import header_columns, sniff_separator

    header = header_columns(gwas, sniff_separator(gwas))
    for name in GWAS_COLUMN_PARAMS:
        column = params.get(name)
        if column and column not in header:
            close = difflib.get_close_matches(column, header, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise EnpactError(f"{source}: parameter '{name}': column '{column}' is not in {gwas}{hint}")


def demo_dir() -> Path:
    """The bundled demo data directory."""
    return Path(str(resources.files("enpact") / "data" / DEMO_DIR_NAME))


DEMOS = ("single", "contexts", "borzoi")


def demo_weights_dir(predictor: str) -> Path:
    """Where the demo's tiny random checkpoint of a predictor that cannot be bundled (borzoi, ~130 MB) is written:
    `enpact/<predictor>_tiny` in the user's cache folder ($XDG_CACHE_HOME, else ~/.cache), never the source tree."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "enpact" / f"{predictor}_tiny"


def write_demo_weights(predictor: str, out: Path | None = None) -> Path:
    """The demo's tiny random checkpoint of a predictor (demo_weights_dir unless `out`), written unless it is
    there already."""
    from enpact.registry import PREDICTORS

    return PREDICTORS.load(predictor).write_demo_checkpoint(out or demo_weights_dir(predictor))


def demo_params(demo_kind: str = "single") -> dict[str, Any]:
    """Parameters of the bundled demo: tiny Enformer, demo genome, VCF and GWAS; with "contexts", two training
    datasets over the same individuals (contexts.csv: blood = expression.tsv, and liver) in place of one; with
    "borzoi", the tiny random Borzoi (demo_weights_dir) in place of the tiny Enformer and the expression planted
    on its features (borzoi/expression.tsv)."""
    demo = demo_dir()
    if demo_kind == "contexts":
        params = {**demo_params(), "contexts": str(demo / "contexts.csv"), "name": "enpact_demo"}
        del params["expression"]
        return params
    if demo_kind == "borzoi":
        return {**demo_params(), "predictor": "borzoi", "weights": str(demo_weights_dir("borzoi")), "batch_size": 16,
                "expression": str(demo / "borzoi" / "expression.tsv"), "name": "enpact_demo_borzoi"}
    return {
        "fasta": str(demo / "genome.fa"),
        "annotation": str(demo / "genes.gtf"),
        "expression": str(demo / "expression.tsv"),
        "vcf": str(demo / "genotypes.vcf.gz"),
        "gwas": str(demo / "gwas.tsv.gz"),
        "gwas_snp_column": "variant_id",
        "gwas_effect_allele_column": "effect_allele",
        "gwas_non_effect_allele_column": "non_effect_allele",
        "gwas_beta_column": "effect_size",
        "gwas_se_column": "standard_error",
        "gwas_zscore_column": "zscore",
        "gwas_pvalue_column": "pvalue",
        "gwas_keep_non_rsid": True,
        "weights": str(demo / "enformer_tiny"),
        "batch_size": 32,
        "device": "cpu",
        "train_chroms": "chr1,chr2,chr3,chr4",
        "valid_chroms": "chr5",
        "test_chroms": "chr6",
        "loci_per_chunk": 60,
        "name": "enpact_demo",
        "population": "simulated",
        "truth_causal_genes": str(demo / "truth" / "causal_genes.tsv"),
        "outdir": "results",
    }


def complete_params(given: dict[str, Any], schema: dict, source: str) -> dict[str, Any]:
    """Validated parameters with the schema's defaults filled in, without the Nextflow-only ones."""
    given = {k: v for k, v in given.items() if v is not None}  # an explicit null means "use the default"
    validate_params(given, schema, source)
    params = {**schema_defaults(schema), **given}
    params = {k: v for k, v in params.items() if k not in NEXTFLOW_ONLY | INSTITUTIONAL_PARAMS}
    check_param_rules(params, source)
    return params


def resolve_params(params_file: Path | None, overrides: dict[str, Any] | None = None,
                   demo_kind: str = "single") -> dict[str, Any]:
    """Schema defaults <- parameter file (or the demo) <- overrides; validated, inputs checked."""
    source = str(params_file) if params_file else "demo parameters"
    given = read_params_file(params_file) if params_file else demo_params(demo_kind)
    given.update({k: v for k, v in (overrides or {}).items() if v is not None})
    params = complete_params(given, load_schema(), source)
    check_input_files(params, source)
    return params


def write_params(path: Path, params: dict[str, Any]) -> None:
    """pipeline_info/params.json: the parameters a run used (both engines write it with this function)."""
    from enpact.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")


def cast_to_schema_types(given: dict[str, Any], schema: dict) -> dict[str, Any]:
    """Strings where the schema wants a boolean, integer or number, converted (Nextflow's strict parser passes
    command-line values as strings); values that do not convert are left for the validator to report."""
    properties = schema_properties(schema)
    cast = dict(given)
    for name, value in given.items():
        kind = properties.get(name, {}).get("type")
        if not isinstance(value, str) or kind not in ("boolean", "integer", "number"):
            continue
        text = value.strip()
        if kind == "boolean" and text.lower() in ("true", "false"):
            cast[name] = text.lower() == "true"
        elif kind == "integer" and re.fullmatch(r"[+-]?\d+", text):
            cast[name] = int(text)
        elif kind == "number":
            try:
                cast[name] = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
            except ValueError:
                pass
    return cast


def check_nextflow_params(path: Path) -> dict[str, Any]:
    """The parameters of a Nextflow run (its params as JSON), checked like `enpact run --params` checks a file.

    Parameters the schema does not define (institutional configs add their own) are dropped with a warning:
    nf-schema has already reported them; a parameter this version removed is refused, as `enpact run` refuses it.
    Input files are not opened: they may be in object storage.
    """
    schema = load_schema()
    given = cast_to_schema_types(read_params_file(path), schema)
    known = schema_properties(schema)
    kept = known.keys() | NEXTFLOW_ONLY | INSTITUTIONAL_PARAMS | REMOVED_PARAMS.keys()   # removed ones: refused
    unknown = sorted(name for name in given if name not in kept)
    if unknown:
        log.warning("%s: ignoring parameters the schema does not define: %s", path, ", ".join(unknown))
    given = {k: v for k, v in given.items() if k in kept}
    return complete_params(given, schema, "pipeline parameters")
