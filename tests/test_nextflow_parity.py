"""One pipeline, two engines: for the same parameter file, `nextflow run` and `enpact run` run the same steps with
the same configurations (DESIGN.md section 2).

For each parameter file below, both sides are turned into step configurations (enpact.steps):
- `enpact run`: the configurations the runner hands to its steps (recorded at Runner.step), over chunk files named
  like the Nextflow chunks;
- Nextflow: the tasks the workflow runs (nextflow_tasks: the inputs it stages, the options ENPACT_CHECK gives each
  step, from `enpact check --options-dir` run on the params Nextflow would have: nextflow.config, profiles, then the
  parameter file), each module's script rendered with conf/base.config + conf/modules.config + the profiles' configs
  (tests/nextflow/render_modules.groovy), its `enpact` command line parsed by the CLI's own parser and turned into
  the configuration by the CLI's own code (enpact.options.from_arguments).
The configurations are compared field by field. Fields that name files (their `role` in enpact.steps) are compared
by file name (Nextflow stages inputs under their own names), the others exactly; the only allowed differences are
ENGINE_DIFFERENCES, each with its reason. pipeline_info/params.json is compared too: ENPACT_CHECK's copy with the
runner's; and the published layout. tests/test_nextflow_contract.py checks the same rendered tasks against the CLI's
output contract.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shlex
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "nextflow"))

from nf_tooling import (  # noqa: E402
    ROOT,
    StagedFile,
    StagedFiles,
    enpact_commands,
    module_files,
    parse_command,
    parse_process,
    profile_configs,
    profile_params,
    render_entries,
    script_file,
    stage_inputs,
    subcommand_of,
    takes_options,
    written_files,
)

from enpact.layout import gwas_name, keeps_personalized  # noqa: E402
from enpact.options import flags_of, from_arguments, option_fields  # noqa: E402
from enpact.params import (  # noqa: E402
    NEXTFLOW_ONLY,
    check_nextflow_params,
    complete_params,
    demo_params,
    load_schema,
    resolve_gwas_files,
)
from enpact.steps import STEPS, as_dict, roles, step_of  # noqa: E402

F, FL = StagedFile, StagedFiles
LOCI_CHUNKS = ["ENSGDEMO00001.1--ENSGDEMO00060.1", "ENSGDEMO00061.1--ENSGDEMO00120.1"]
SELECTED_CHUNKS = ["ENSGDEMO00015.3--ENSGDEMO00203.3"]   # the loci chunks of a selection (runner.selects_loci)

# Configuration fields that differ by design, per step, with the reason
ENGINE_DIFFERENCES = {
    ("train", "device"): "the Nextflow training task runs on the CPU queue without a GPU (--device cpu); "
                         "enpact run trains where params.device says",
}

DEMO = demo_params()
PARAM_FILES = {
    # name: (Nextflow profiles, parameter file); None: `enpact run` without --params and `-profile test`
    "demo": (["test"], None),
    "gpu_run": (["gpu"], {**DEMO, "device": "cuda", "use_gpu": True, "batch_size": 16, "precision": "fp32",
                          "gpu_queue": "gpu", "cpu_queue": "cpu", "weights": "EleutherAI/enformer-official-rough"}),
    "own_data": ([], yaml.safe_load((ROOT / "docs" / "params.example.yaml").read_text())),
    "gwas_selected_loci": ([], {**DEMO, "lin_gwas_pvalue": 0.001}),
    "keep_unfiltered": ([], {**DEMO, "keep_unfiltered": True, "lin_keep_indels": True, "lin_window_bp": 2048}),
    "delete_personalized": ([], {**DEMO, "delete_personalized": True, "save_features": True}),
    "several_gwas": ([], {**DEMO, "gwas": "gwas/height.tsv.gz,gwas/ldl.txt", "lin_gwas_pvalue": 5e-8,
                          "samples": "samples.txt", "window_bp": 4096, "baseline_track": "CAGE:demo 1"}),
    "peaks_by_name": ([], {**{k: v for k, v in DEMO.items() if k != "annotation"}, "annotation_format": "names",
                           "model_type": "cnn", "aggregate": "none", "snp_key": "rsid", "gwas_keep_non_rsid": False,
                           "model_hyperparameters": "channels=16,dropout=0.2", "predictor_options": "head=human"}),
    "contexts": (["test_contexts"], demo_params("contexts")),
    "borzoi": (["test_borzoi"], demo_params("borzoi")),
    "contexts_reference_panel": ([], {**demo_params("contexts"), "covariance_vcf": "panel/eur.vcf.gz",
                                      "covariance_samples": "panel/eur_ids.txt", "gwas": "gwas/height.tsv.gz,gwas/ldl.txt"}),
    "reference_panel": ([], {**DEMO, "covariance_vcf": "panel/eur.vcf.gz", "samples": "samples.txt"}),
    "selected_loci": ([], {**DEMO, "select_variants": "finemap/credible.tsv", "select_regions": "finemap/regions.bed",
                           "lin_window_bp": 2048}),
    "linearizable_variants": ([], {**DEMO, "personalize_variants": "linearizable", "lin_maf": 0.05, "lin_window_bp": 2048,
                                   "lin_keep_indels": True, "samples": "samples.txt"}),
}
# processes included under another name (`include { ENPACT_COVARIANCE as ENPACT_JOINT_COVARIANCE }`): their module
ALIASES = {"ENPACT_PANEL_COVARIANCE": "ENPACT_COVARIANCE", "ENPACT_JOINT_COVARIANCE": "ENPACT_COVARIANCE"}
MODULES = {parse_process(m).name: m for m in module_files()}


# --------------------------------------------------------------------------------------------------------------
# enpact run
# --------------------------------------------------------------------------------------------------------------

def runner_params(name: str) -> dict:
    """The parameters `enpact run` resolves for a parameter file (input files are not opened here)."""
    _profiles, given = PARAM_FILES[name]
    return complete_params(dict(DEMO if given is None else given), load_schema(), name)


def runner_steps(params: dict, outdir: Path, monkeypatch) -> list[tuple[str, object]]:
    """(step key, configuration) of every step `enpact run` takes for these parameters."""
    from enpact import runner as runner_module

    for chunk in LOCI_CHUNKS:
        (outdir / "loci" / "chunks" / "loci").mkdir(parents=True, exist_ok=True)
        (outdir / "loci" / "chunks" / "loci" / f"{chunk}.tsv").touch()
    for chunk in SELECTED_CHUNKS:   # only read when the parameters select loci
        (outdir / "loci" / "chunks" / "selected").mkdir(parents=True, exist_ok=True)
        (outdir / "loci" / "chunks" / "selected" / f"{chunk}.tsv").touch()
    recorded = []

    def record(self, _group, key, config, _outputs):
        recorded.append((key, config))
        return False

    monkeypatch.setattr(runner_module.Runner, "step", record)
    monkeypatch.setattr(runner_module, "check_study", lambda params: None)   # input files are not opened here
    monkeypatch.setattr(runner_module, "check_device", lambda device: None)   # nor is a GPU looked for
    # no plan is written here: each loci chunk's distinct windows fit in one part (as the demo's do)
    monkeypatch.setattr(runner_module, "read_plan", lambda path: type("Plan", (), {"n_parts": 1})())
    monkeypatch.setattr("enpact.report.write_report", lambda *args, **kwargs: None)
    runner_module.run_pipeline({**params, "outdir": str(outdir)}, progress=False)
    return recorded


# --------------------------------------------------------------------------------------------------------------
# Nextflow
# --------------------------------------------------------------------------------------------------------------

def nextflow_params(name: str) -> tuple[list[str], dict]:
    """Profiles and params of `nextflow run . -profile ... -params-file FILE` (the file's values win)."""
    profiles, given = PARAM_FILES[name]
    return profiles, profile_params(profiles, given)


def staged(value: str | None) -> list:
    """An input file as main.nf stages it ([] when the parameter is unset)."""
    return F(Path(value).name) if value else []


def weights_input(weights: str) -> dict:
    """main.nf's weightsInput: a checkpoint directory is staged under weights/, anything else is a hub id."""
    is_path = "://" in weights or weights.startswith(("/", ".")) or Path(weights).exists()
    return {"weights_id": "", "weights_dir": F(f"weights/{Path(weights).name}")} if is_path else \
        {"weights_id": weights, "weights_dir": []}


def nextflow_tasks(params: dict) -> list[tuple[str, str, dict]]:
    """(process, task key like the runner's step key, inputs) of every task the workflow would run."""
    from enpact.contexts import read_context_sheet
    from enpact.layout import database_name

    fasta = {"meta2": {"id": "genome"}, "fasta": staged(params["fasta"]), "fai": []}
    vcf = {"vcf": staged(params["vcf"]), "tbi": F(Path(params["vcf"]).name + ".tbi")}
    weights = weights_input(str(params["weights"]))
    gwas_files = resolve_gwas_files(params.get("gwas"))
    from enpact.runner import selects_loci

    selection_gwas = staged(gwas_files[0]) if params.get("lin_gwas_pvalue") is not None and gwas_files else []
    personal_chunks = SELECTED_CHUNKS if selects_loci(params) else LOCI_CHUNKS
    rows = read_context_sheet(params["contexts"]) if params.get("contexts") else []
    names = [row["context"] for row in rows]
    # (context or None, meta of its loci task, staged expression, staged annotation)
    contexts = [(row["context"], {"id": row["context"], "context": row["context"],
                                  "annotation_format": row.get("annotation_format")},
                 F(Path(row["expression"]).name),
                 F(Path(row["annotation"]).name) if row.get("annotation") else staged(params.get("annotation")))
                for row in rows] or [(None, {"id": "loci"}, staged(params.get("expression")),
                                      staged(params.get("annotation")))]
    sheet_files = [Path(row[key]).name for row in rows for key in ("expression", "annotation") if row.get(key)]
    if params.get("covariance_vcf"):
        panel = {"vcf": staged(params["covariance_vcf"]), "tbi": F(Path(params["covariance_vcf"]).name + ".tbi"),
                 "meta3": {"id": "panel_samples"}, "samples": staged(params.get("covariance_samples"))}
        panel_meta = {"id": "reference_panel", "reference": True}
    else:
        panel = {**vcf, "meta3": {"id": "panel_samples"}, "samples": staged(params.get("samples"))}
        panel_meta = {"id": "panel", "reference": False}
    tasks = [
        ("ENPACT_CHECK", "check", {"meta": {"id": "params"}, "nextflow_params": F("nextflow_params.json"), **fasta,
                                   "meta3": {"id": "loci"}, "annotation": staged(params.get("annotation")),
                                   "meta4": {"id": "expression"}, "expression": staged(params.get("expression")),
                                   "meta5": {"id": "vcf"}, **vcf, "meta6": {"id": "samples"},
                                   "samples": staged(params.get("samples")),
                                   "gwas": FL(tuple(f"gwas/{i}/{Path(g).name}" for i, g in enumerate(gwas_files, 1)))
                                   if gwas_files else [],
                                   "meta7": {"id": "contexts"}, "contexts": staged(params.get("contexts")),
                                   "context_files": FL(tuple(f"contexts/{i}/{n}" for i, n in enumerate(sheet_files, 1)))
                                   if sheet_files else []}),
        ("ENPACT_CHUNK", "chunk", {"meta": {"id": "loci"}, "loci": F("loci.tsv")}),
        ("ENPACT_MERGE_FEATURES", "reference/merge",
         {"meta": {"id": "reference"}, "stores": FL(tuple(f"chunks/{c}.h5" for c in LOCI_CHUNKS))}),
    ]
    if names:
        tasks.append(("ENPACT_LOCI_UNION", "loci/union", {"meta": {"id": "loci", "contexts": names}, "loci": FL(tuple(
            f"contexts/{i}/{n}.tsv" for i, n in enumerate(names, 1)))}))
    databases = []
    for name, meta, expression, annotation in contexts:
        key = (lambda step: step if name is None else f"{step}/{name}")   # noqa: E731
        db_name = database_name(params["name"], name)
        databases.append(db_name)
        tasks.append(("ENPACT_LOCI", key("loci"), {"meta": meta, "annotation": annotation, "expression": expression,
                                                   **fasta}))
        tasks.append(("ENPACT_TRAIN", key("train"), {"meta": meta, "features": F("reference.h5"),
                                                     "loci": F("loci.tsv" if name is None else f"{name}.tsv"),
                                                     "expression": expression}))
        stores = tuple(f"personalized/{c}.h5" for c in personal_chunks)
        tasks.append(("ENPACT_ACCURACY", key("accuracy"), {"meta": {"id": "accuracy", "context": name},
                                                           "stores": FL(stores) if len(stores) > 1 else F(stores[0]),
                                                           "expression": expression}))
        chunks = tuple(f"chunks/{c}.h5" for c in personal_chunks)
        tasks.append(("ENPACT_DATABASE", key("database"), {"meta": {"id": "databases", "context": name or ""},
                                                           "linearized": FL(chunks) if len(chunks) > 1 else F(chunks[0])}))
        covariance = F(f"{db_name}.txt.gz")
        if params.get("covariance_vcf"):
            covariance = F(f"{db_name}.reference_panel.txt.gz")
            tasks.append(("ENPACT_PANEL_COVARIANCE", key("covariance"), {
                "meta": {"id": db_name, "context": name or ""}, "databases": F(f"databases/{db_name}.db"),
                "meta2": panel_meta, **panel}))
        for chunk in personal_chunks:
            tasks.append(("ENPACT_LINEARIZE", key("linearize") + f"/{chunk}", {
                "meta": {"id": chunk, "n_loci_chunks": len(personal_chunks), "context": name or ""},
                "personalized": F(f"{chunk}.h5"), "loci": F(f"{chunk}.tsv"), "meta2": {"id": "vcf"}, **vcf}))
        db = {"meta2": {"id": "databases", "context": name or ""}, "db": F(f"{db_name}.db"), "covariance": covariance}
        finemap_db = {"meta2": db["meta2"], "db": db["db"]}
        ld_panel = {"meta3": panel_meta, "vcf": panel["vcf"], "tbi": panel["tbi"], "meta4": panel["meta3"],
                    "samples": panel["samples"]}
        if name is None:
            for gwas in gwas_files:
                tasks.append(("ENPACT_TWAS", f"twas/{gwas_name(gwas)}", {
                    "meta": {"id": Path(gwas).name}, "gwas": staged(gwas), **db}))
                tasks.append(("ENPACT_FINEMAP", f"finemap/{gwas_name(gwas)}", {
                    "meta": {"id": Path(gwas).name}, "twas": F(f"twas/{gwas_name(gwas)}.csv"), **finemap_db,
                    **ld_panel}))
        elif gwas_files:
            files = sorted(Path(g).name for g in gwas_files)
            tasks.append(("ENPACT_TWAS", f"twas/{name}", {"meta": {"id": name},
                                                          "gwas": FL(tuple(files)) if len(files) > 1 else F(files[0]),
                                                          **db}))
            tables = sorted(f"twas/{gwas_name(g)}.csv" for g in gwas_files)
            tasks.append(("ENPACT_FINEMAP", f"finemap/{name}", {
                "meta": {"id": name}, "twas": FL(tuple(tables)) if len(tables) > 1 else F(tables[0]), **finemap_db,
                **ld_panel}))
    if names and gwas_files:
        dbs = FL(tuple(f"databases/{d}.db" for d in databases))
        tasks.append(("ENPACT_JOINT_COVARIANCE", "multixcan/covariance", {
            "meta": {"id": "snp_covariance"}, "databases": dbs, "meta2": panel_meta, **panel}))
        for gwas in gwas_files:
            tasks.append(("ENPACT_MULTIXCAN", f"multixcan/{gwas_name(gwas)}", {
                "meta": {"id": Path(gwas).name}, "gwas": staged(gwas),
                "meta2": {"id": "contexts", "contexts": names}, "databases": dbs,
                "twas": FL(tuple(f"twas/{n}" for n in names)), "covariance": F("snp_covariance.txt.gz")}))
    models = {"meta4": {"id": "models", "contexts": names},
              "model": FL(tuple(f"enpact_model/{n}" for n in names)) if names else F("enpact_model/model")}
    if selects_loci(params):
        tasks.append(("ENPACT_SELECT", "select", {
            "meta": {"id": "selected"}, "loci": F("loci.tsv"), "features": F("reference.h5"),
            "meta2": {"id": "gwas"}, "gwas": selection_gwas,
            "meta3": {"id": "credible_sets"}, "credible_sets": staged(params.get("select_variants")),
            "meta4": {"id": "regions"}, "regions": staged(params.get("select_regions"))}))
    for chunk in LOCI_CHUNKS:
        meta = {"id": chunk, "n_loci_chunks": len(LOCI_CHUNKS)}
        tasks.append(("ENPACT_PREDICT", f"reference/{chunk}", {"meta": meta, "loci": F(f"{chunk}.tsv"), **fasta,
                                                              **weights}))
    samples = {"meta4": {"id": "samples"}, "samples": staged(params.get("samples"))}
    for chunk in personal_chunks:
        meta = {"id": chunk, "n_loci_chunks": len(personal_chunks)}
        tasks.append(("ENPACT_PLAN", f"plan/{chunk}", {"meta": meta, "loci": F(f"{chunk}.tsv"), **fasta,
                                                      "meta3": {"id": "vcf"}, **vcf, **samples,
                                                      "meta5": {"id": "reference"}, "features": F("reference.h5")}))
        tasks.append(("ENPACT_PERSONALIZE", f"personalize/{chunk}/part0", {
            "meta": {**meta, "part": 0, "n_parts": 1}, "loci": F(f"{chunk}.tsv"), "plan": F(f"{chunk}.h5"), **fasta,
            "meta3": {"id": "vcf"}, **vcf, **models, **weights, "meta5": {"id": "samples"},
            "panel_samples": F(f"panel/{Path(params['samples']).name}") if params.get("samples") else []}))
        tasks.append(("ENPACT_MERGE", f"merge/{chunk}", {"meta": meta, "stores": F(f"chunks/{chunk}.part0000.h5"),
                                                        "plan": F(f"{chunk}.h5")}))
    # the report: the published results, staged in the results layout (contexts: their folders)
    gwas_names = sorted(gwas_name(g) for g in gwas_files)
    if names:
        model, accuracy = FL(tuple(f"model/{n}" for n in names)), FL(tuple(f"accuracy/{n}" for n in names))
        twas = FL(tuple(f"twas/{n}" for n in names)) if gwas_files else []
        multixcan = FL(tuple(f"multixcan/{g}{s}" for g in gwas_names for s in (".qq.png", ".tsv"))) if gwas_files else []
        finemap = FL(tuple(f"finemap/{n}" for n in names)) if gwas_files else []
    else:
        model = FL(("model/metrics.json", "model/model.json", "model/weights.npz"))
        accuracy = FL(("accuracy/personalized_accuracy.tsv", "accuracy/personalized.json"))
        twas = FL(tuple(f"twas/{g}{s}" for g in gwas_names for s in (".csv", ".manhattan.png", ".qq.png")))
        twas = twas if gwas_files else []
        multixcan = []
        finemap = FL(tuple(f"finemap/{g}.tsv" for g in gwas_names)) if gwas_files else []
    tasks.append(("ENPACT_REPORT", "report", {
        "meta": {"id": "report"}, "params_json": F("pipeline_info/params.json"),
        "truth": staged(params.get("truth_causal_genes")), "model": model, "accuracy": accuracy,
        "databases": FL(tuple(sorted(f"linearized/{d}{s}" for d in databases for s in (".db", ".summary.tsv", ".txt.gz")))),
        "twas": twas, "multixcan": multixcan, "finemap": finemap}))
    return tasks


def check_options(params: dict, directory: Path) -> dict[str, str]:
    """Each step's options line, as ENPACT_CHECK writes it for these params (`enpact check --options-dir`)."""
    from enpact.steps.check import CheckConfig, check

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "nextflow_params.json").write_text(json.dumps(params))
    check(CheckConfig(params=directory / "nextflow_params.json", out=directory / "params.json",
                      options_dir=directory / "options"))
    return {path.stem: path.read_text().strip() for path in (directory / "options").glob("*.args")}

def module_of(process_name: str) -> Path:
    return MODULES[ALIASES.get(process_name, process_name)]


def workflow_tasks(name: str, directory: Path) -> tuple[list[str], dict, list[tuple[str, str, dict]]]:
    """Profiles, params and tasks (process, key, inputs) of a parameter file: each task's inputs with its step's
    options line, as ENPACT_CHECK writes it for those params."""
    profiles, params = nextflow_params(name)
    options = check_options(params, directory / "check")
    tasks = nextflow_tasks(params)
    for process_name, _key, inputs in tasks:
        process = parse_process(module_of(process_name))
        if takes_options(process):
            inputs["options"] = options[subcommand_of(process.path)]
        assert list(inputs) == process.input_names, f"{process_name}: inputs {process.input_names}, test gives {list(inputs)}"
    return profiles, params, tasks


def render_workflows(names: list[str], directory: Path, sections: tuple[str, ...] = ("script",),
                     publish: dict[str, dict[str, list[str]]] | None = None) -> dict[str, dict]:
    """The tasks of these parameter files rendered in one JVM: name -> {params, tasks, directory (their inputs are
    staged there), results: {"<task key>|<section>": rendered}}; `publish`: name -> task key -> files whose
    published path to resolve."""
    workflows, entries = {}, []
    for name in names:
        folder = directory / name
        folder.mkdir(parents=True, exist_ok=True)
        profiles, params, tasks = workflow_tasks(name, folder)
        workflows[name] = {"params": params, "tasks": tasks, "directory": folder, "results": {}}
        for process_name, key, inputs in tasks:
            process = parse_process(module_of(process_name))
            stage_inputs(inputs, folder)
            entries += [{"id": f"{name}|{key}|{section}", "process": process_name, "labels": process.labels,
                         "configs": [str(c) for c in profile_configs(profiles)], "params": params, "inputs": inputs,
                         "script_file": str(script_file(process, section, directory)),
                         "publish_files": (publish or {}).get(name, {}).get(key)} for section in sections]
    for entry_id, result in render_entries(entries, directory).items():
        name, task = entry_id.split("|", 1)
        workflows[name]["results"][task] = result
    return workflows


def nextflow_steps(workflow: dict) -> list[tuple[str, object]]:
    """(task key, configuration) of every task of a rendered workflow: its `enpact` command line as the CLI turns
    it into the step's configuration."""
    steps = []
    with contextlib.chdir(workflow["directory"]):
        for process_name, key, _inputs in workflow["tasks"]:
            result = workflow["results"][f"{key}|script"]
            assert not result["error"], f"{process_name}: {result['error']}"
            commands = enpact_commands(result["script"])
            assert len(commands) == 1, f"{process_name}: {commands}"
            steps.append((key, step_config(shlex.split(commands[0])[1:])))
    return steps


# --------------------------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------------------------

def input_flags(config_type: type) -> set[str]:
    """The flags of a configuration's input files (the CLI's parser checks that they exist)."""
    flags: set[str] = set()
    for f, kind, spec in option_fields(config_type):
        if dataclasses.is_dataclass(kind.base) and not kind.many:
            flags |= input_flags(kind.base)
        elif spec.role == "input" and kind.base is Path:
            flags |= set(flags_of(f, kind, spec, underscore=True))
    return flags


def materialize(argv: list[str]) -> None:
    """Create the input files and directories a command line names."""
    flags, given = input_flags(STEPS[argv[0]].config), False
    for token in argv[1:]:
        if token.startswith("--"):
            given = token in flags
        elif given and "{" not in token:
            path = Path(token.split("=", 1)[1] if "=" in token else token)   # --model CONTEXT=DIR
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch() if path.suffix else path.mkdir()


def step_config(argv: list[str]) -> object:
    """The configuration the CLI hands to the step for a command line."""
    materialize(argv)
    ns, error = parse_command("enpact " + " ".join(shlex.quote(a) for a in argv))
    assert error is None, f"`enpact {' '.join(argv)}` is rejected: {error}"
    return from_arguments(ns.step.config, ns)


def _file_name(value: object) -> object:
    """A path as its file name (lists element-wise); None stays None."""
    if isinstance(value, list):
        return [Path(str(v)).name for v in value]
    return None if value is None else Path(str(value)).name


def comparable(config: object) -> tuple[str, dict]:
    """(step, fields) with file fields reduced to file names, nested configurations flattened (predictor.bins)
    and TWAS outputs resolved."""
    from enpact.steps.association import _with_gwas_name
    from enpact.twas import output_paths, plot_prefixes

    step = step_of(config).name
    if step == "multixcan":
        config = _with_gwas_name(config)   # `{gwas}` named as `enpact multixcan` names it
    values = as_dict(config)
    if step == "finemap":
        from enpact.finemap import output_path

        values["out"] = str(output_path(Path(config.twas[0]), config.out, len(config.twas) > 1))
    if step == "twas":
        values["out"] = str(output_paths(list(config.gwas_files), config.out)[0])
        values["plots_prefix"] = (plot_prefixes(list(config.gwas_files), config.plots_prefix)[0]
                                  if config.plots_prefix else None)
    for name in roles(config):
        values[name] = _file_name(values[name])
    for name, value in list(values.items()):
        if isinstance(value, dict):
            values.update({f"{name}.{k}": v for k, v in values.pop(name).items()})
    for key in ("weights", "predictor.weights"):
        if values.get(key) and Path(str(values[key])).parent != Path("."):
            values[key] = Path(str(values[key])).name   # a checkpoint directory; a hub id stays as it is
    return step, values


def differences(runner: list[tuple[str, object]], nextflow: list[tuple[str, object]]) -> list[str]:
    """Every step one engine runs and the other does not, and every field on which their configurations
    disagree."""
    problems = []
    # `enpact run` checks and reports outside its resumable steps (the check: test_both_engines_record_the_same_parameters)
    runner_by_key, nextflow_by_key = dict(runner), {k: v for k, v in nextflow if k not in ("check", "report")}
    for key in sorted(set(runner_by_key) ^ set(nextflow_by_key)):
        engine = "enpact run" if key in runner_by_key else "Nextflow"
        problems.append(f"{key}: only {engine} runs this step")
    for key in sorted(set(runner_by_key) & set(nextflow_by_key)):
        command, ours = comparable(runner_by_key[key])
        other_command, theirs = comparable(nextflow_by_key[key])
        if command != other_command:
            problems.append(f"{key}: enpact run runs `enpact {command}`, Nextflow `enpact {other_command}`")
            continue
        for option in sorted(set(ours) | set(theirs)):
            if (command, option) in ENGINE_DIFFERENCES:
                continue
            if ours.get(option) != theirs.get(option):
                problems.append(f"{key}: {option}: enpact run {ours.get(option)!r}, "
                                f"Nextflow {theirs.get(option)!r}")
    return problems


@pytest.fixture(scope="module")
def workflows(tmp_path_factory) -> dict[str, dict]:
    return render_workflows(list(PARAM_FILES), tmp_path_factory.mktemp("parity"))


@pytest.mark.parametrize("name", list(PARAM_FILES))
def test_both_engines_run_the_same_steps_with_the_same_options(name, workflows, tmp_path, monkeypatch):
    runner = runner_steps(runner_params(name), tmp_path / "results", monkeypatch)
    problems = differences(runner, nextflow_steps(workflows[name]))
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", list(PARAM_FILES))
def test_both_engines_record_the_same_parameters(name, tmp_path):
    """ENPACT_CHECK's pipeline_info/params.json (from Nextflow's params) equals the one `enpact run` writes."""
    _profiles, params = nextflow_params(name)
    path = tmp_path / "nextflow_params.json"
    path.write_text(json.dumps({**params, "outdir": "results"}))
    nextflow = check_nextflow_params(path)
    runner = {**runner_params(name), "outdir": "results"}
    for key in set(nextflow) | set(runner):
        assert key not in NEXTFLOW_ONLY
        want, got = runner.get(key), nextflow.get(key)
        if isinstance(want, str) and "/" in want:
            want, got = Path(want).resolve(), Path(str(got)).resolve()
        assert got == want, f"{name}: {key}: Nextflow records {got!r}, enpact run {want!r}"


def test_comparison_sees_a_drifted_option(workflows, tmp_path, monkeypatch):
    """Planted drift: a changed option on one side and a step only one side runs are both reported."""
    runner = runner_steps(runner_params("demo"), tmp_path / "results", monkeypatch)
    drifted = [(key, dataclasses.replace(config, maf=0.05) if step_of(config).name == "linearize" else config)
               for key, config in nextflow_steps(workflows["demo"])]
    monkeypatch.chdir(tmp_path)
    drifted.append(("evaluate", step_config(["evaluate", "--model", "m", "--features", "f", "--loci", "l",
                                             "--expression", "e", "--outdir", "o"])))
    found = differences(runner, drifted)
    assert any("maf: enpact run 0.01, Nextflow 0.05" in p for p in found), found
    assert any(p.startswith("evaluate: only Nextflow runs this step") for p in found), found


def result_files(config: object) -> set[str]:
    """The files (not directories or patterns) a step writes, as its configuration names them."""
    return {f for f in written_files(step_of(config).name, config) if "*" not in f and Path(f).suffix}


PUBLISHED = ["demo", "delete_personalized", "several_gwas", "contexts", "selected_loci", "contexts_reference_panel",
             "borzoi"]


def test_nextflow_publishes_the_results_layout_of_enpact_run(workflows, tmp_path_factory):
    """Every file `enpact run` keeps under outdir, Nextflow publishes at the same path, and nothing else (the
    personalized stores only when enpact.layout.keeps_personalized says so; the steps' options files never)."""
    outputs = {}
    for name in PUBLISHED:
        outputs[name] = {key: sorted(result_files(config)) for key, config in nextflow_steps(workflows[name])
                         if key != "report"}   # report/: written outside the steps by `enpact run`
        outputs[name]["check"] = ["pipeline_info/params.json",
                                  *(f"options/{step}.args" for step, spec in STEPS.items() if spec.task)]
    published = render_workflows(PUBLISHED, tmp_path_factory.mktemp("publish"), publish=outputs)
    problems = []
    for name in PUBLISHED:
        outdir = tmp_path_factory.mktemp(f"results_{name}")
        params = runner_params(name)
        kept = {"pipeline_info/params.json"}
        with pytest.MonkeyPatch.context() as patch:
            for _key, config in runner_steps(params, outdir, patch):
                kept |= {str(Path(f).relative_to(outdir)) for f in result_files(config)}
        if not keeps_personalized(params):
            kept = {f for f in kept if not f.startswith("personalized/")}
        nextflow_outdir = published[name]["params"]["outdir"]
        theirs = {str(Path(path).relative_to(nextflow_outdir)) for result in published[name]["results"].values()
                  for path in (result["published"] or {}).values() if path}
        if theirs != kept:
            problems.append(f"{name}: only Nextflow publishes {sorted(theirs - kept)}; "
                            f"only enpact run keeps {sorted(kept - theirs)}")
    assert not problems, "\n".join(problems)


def test_the_report_task_stages_its_inputs_where_the_results_layout_puts_them(tmp_path):
    """ENPACT_REPORT stages the published results into the layout `enpact report` reads (enpact.layout)."""
    import re

    from enpact.layout import ResultsLayout

    layout = ResultsLayout(tmp_path)
    where = {
        "params_json": layout.params_json, "model": layout.model_json, "accuracy": layout.accuracy_table,
        "databases": layout.database("n"), "twas": layout.twas_table("g"), "multixcan": layout.multixcan_table("g"),
        "finemap": layout.finemap_table("g"),
    }
    text = (ROOT / "modules" / "enpact_report" / "main.nf").read_text()
    staged = dict(re.findall(r"path\((\w+), stageAs: '([^']+)'\)", text))
    assert set(staged) == set(where), staged
    for name, pattern in staged.items():
        relative = str(where[name].relative_to(tmp_path))
        assert relative == pattern or Path(relative).parent == Path(pattern).parent and pattern.endswith("/*"), \
            f"ENPACT_REPORT stages {name} as {pattern}, enpact.layout puts it at {relative}"
    assert re.search(r'path\("report/\*"\)', text) and layout.report.name == "report"
