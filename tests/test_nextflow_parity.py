"""One pipeline, two engines: for the same parameter file, `nextflow run` and `enpact run` run the same steps with
the same configurations (DESIGN.md section 2).

For each parameter file below, both sides are turned into step configurations (enpact.steps):
- `enpact run`: the configurations the runner hands to its steps (recorded at Runner.step), over chunk files named
  like the Nextflow chunks;
- Nextflow: every module's script rendered with conf/base.config + conf/modules.config + the profiles' configs and
  the params Nextflow would have (nextflow.config, profiles, then the parameter file), for the inputs the workflow
  would stage (tests/nextflow/render_modules.groovy); its `enpact` command line parsed by the CLI's own parser and
  turned into the configuration by the CLI's own code.
The configurations are compared field by field. Fields that name files (their `role` in enpact.steps) are compared
by file name (Nextflow stages inputs under their own names), the others exactly; the only allowed differences are
ENGINE_DIFFERENCES, each with its reason. pipeline_info/params.json is compared too: ENPACT_CHECK's copy with the
runner's.
"""

from __future__ import annotations

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
    module_files,
    parse_process,
    profile_configs,
    profile_params,
    render_entries,
)
from test_nextflow_contract import enpact_commands, parse_command, script_file, stage_inputs, written_files  # noqa: E402

from enpact.params import NEXTFLOW_ONLY, check_nextflow_params, complete_params, demo_params, load_schema  # noqa: E402
from enpact.layout import gwas_name, keeps_personalized  # noqa: E402
from enpact.params import resolve_gwas_files  # noqa: E402
from enpact.steps import as_dict, roles, step_of  # noqa: E402

F, FL = StagedFile, StagedFiles
LOCI_CHUNKS = ["ENSGDEMO00001.1--ENSGDEMO00060.1", "ENSGDEMO00061.1--ENSGDEMO00120.1"]
SELECTED_CHUNKS = ["ENSGDEMO00015.3--ENSGDEMO00203.3"]   # the loci chunks of a selection (runner.selects_loci)
SAMPLE_CHUNKS = ["IND001--IND040", "IND041--IND080"]

# Options whose value names a file or directory (parsed command lines): created before parsing
PATH_OPTIONS = {"fasta", "annotation", "expression", "vcf", "samples_file", "loci", "out", "outdir", "features",
                "model", "inputs", "personalized", "gwas", "linearized", "model_db_path", "covariance",
                "gwas_file", "output_file", "plots_prefix", "params", "export_matrix"}
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
                          "gpu_queue": "gpu", "cpu_queue": "cpu"}),
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
    for chunk in SAMPLE_CHUNKS:
        (outdir / "loci" / "chunks" / "samples").mkdir(parents=True, exist_ok=True)
        (outdir / "loci" / "chunks" / "samples" / f"{chunk}.txt").touch()
    for chunk in SELECTED_CHUNKS:   # only read when the parameters select loci
        (outdir / "loci" / "chunks" / "selected").mkdir(parents=True, exist_ok=True)
        (outdir / "loci" / "chunks" / "selected" / f"{chunk}.tsv").touch()
    recorded = []

    def record(self, _group, key, config, _outputs):
        recorded.append((key, config))
        return False

    monkeypatch.setattr(runner_module.Runner, "step", record)
    monkeypatch.setattr(runner_module, "check_study", lambda params: None)   # input files are not opened here
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
        ("ENPACT_CHUNK", "chunk", {"meta": {"id": "loci"}, "loci": F("loci.tsv"), "meta2": {"id": "vcf"}, **vcf,
                                   "meta3": {"id": "samples"}, "samples": staged(params.get("samples"))}),
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
        if name is None:
            for gwas in gwas_files:
                tasks.append(("ENPACT_TWAS", f"twas/{gwas_name(gwas)}", {
                    "meta": {"id": Path(gwas).name}, "gwas": staged(gwas), **db}))
        elif gwas_files:
            files = sorted(Path(g).name for g in gwas_files)
            tasks.append(("ENPACT_TWAS", f"twas/{name}", {"meta": {"id": name},
                                                          "gwas": FL(tuple(files)) if len(files) > 1 else F(files[0]),
                                                          **db}))
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
    return tasks


def render_tasks(name: str, directory: Path, publish_files: dict[str, list[str]] | None = None
                 ) -> tuple[list[tuple[str, str, dict]], dict[str, dict]]:
    """The workflow's tasks for a parameter file and their rendered scripts (and where outputs are published)."""
    profiles, params = nextflow_params(name)
    processes = {parse_process(m).name: parse_process(m) for m in module_files()}
    entries = []
    tasks = nextflow_tasks(params)
    for process_name, key, inputs in tasks:
        process = processes[ALIASES.get(process_name, process_name)]
        assert list(inputs) == process.input_names, f"{process_name}: inputs {process.input_names}, test gives {list(inputs)}"
        entries.append({"id": key, "process": process_name, "labels": process.labels,
                        "configs": [str(c) for c in profile_configs(profiles)], "params": params, "inputs": inputs,
                        "script_file": str(script_file(process, "script", directory)),
                        "publish_files": (publish_files or {}).get(key)})
    results = render_entries(entries, directory)
    for process_name, key, inputs in tasks:
        assert not results[key]["error"], f"{process_name}: {results[key]['error']}"
        stage_inputs(inputs, directory)
    return tasks, results


def nextflow_steps(name: str, directory: Path) -> list[tuple[str, object]]:
    """(task key, configuration) of every task of the Nextflow pipeline for a parameter file: the task's `enpact`
    command line as the CLI turns it into the step's configuration."""
    tasks, results = render_tasks(name, directory)
    steps = []
    for process_name, key, _inputs in tasks:
        commands = enpact_commands(results[key]["script"])
        assert len(commands) == 1, f"{process_name}: {commands}"
        steps.append((key, step_config(shlex.split(commands[0])[1:])))
    return steps


# --------------------------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------------------------

def materialize(argv: list[str]) -> None:
    """Create the files and directories a command line names (its inputs must exist for the CLI's parser)."""
    option = None
    for token in argv[1:]:
        if token.startswith("--"):
            option = token[2:].replace("-", "_")
            continue
        if option == "model" and "=" in token:
            token = token.split("=", 1)[1]   # CONTEXT=DIR
        if option in PATH_OPTIONS and not Path(token).exists() and "{" not in token:
            path = Path(token)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix:
                path.touch()
            else:
                path.mkdir()


def step_config(argv: list[str]) -> object:
    """The configuration the CLI hands to the step for a command line."""
    materialize(argv)
    ns, error = parse_command("enpact " + " ".join(shlex.quote(a) for a in argv))
    assert error is None, f"`enpact {' '.join(argv)}` is rejected: {error}"
    return ns.config(ns)


def _file_name(value: object) -> object:
    """A path as its file name (lists element-wise); None stays None."""
    if isinstance(value, list):
        return [Path(str(v)).name for v in value]
    return None if value is None else Path(str(value)).name


def comparable(config: object) -> tuple[str, dict]:
    """(step, fields) with file fields reduced to file names, nested configurations flattened (predictor.bins)
    and TWAS outputs resolved."""
    from enpact.twas import output_paths, plot_prefixes

    from enpact.steps import _with_gwas_name

    step = step_of(config).name
    if step == "multixcan":
        config = _with_gwas_name(config)   # `{gwas}` named as `enpact multixcan` names it
    values = as_dict(config)
    if step == "twas":
        values["output_file"] = str(output_paths(list(config.gwas_file), config.output_file)[0])
        values["plots_prefix"] = (plot_prefixes(list(config.gwas_file), config.plots_prefix)[0]
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
    runner_by_key, nextflow_by_key = dict(runner), {k: v for k, v in nextflow if k != "check"}
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
def render_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("parity")


@pytest.mark.parametrize("name", list(PARAM_FILES))
def test_both_engines_run_the_same_steps_with_the_same_options(name, render_dir, tmp_path, monkeypatch):
    directory = render_dir / name
    directory.mkdir()
    monkeypatch.chdir(directory)
    runner = runner_steps(runner_params(name), tmp_path / "results", monkeypatch)
    nextflow = nextflow_steps(name, directory)
    assert not differences(runner, nextflow), f"{name}:\n" + "\n".join(differences(runner, nextflow))


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


def test_comparison_sees_a_drifted_option(render_dir, tmp_path, monkeypatch):
    """Planted drift: a changed option on one side and a step only one side runs are both reported."""
    directory = render_dir / "planted"
    directory.mkdir()
    monkeypatch.chdir(directory)
    runner = runner_steps(runner_params("demo"), tmp_path / "results", monkeypatch)
    nextflow = nextflow_steps("demo", directory)
    drifted = [(key, dataclasses.replace(config, maf=0.05) if step_of(config).name == "linearize" else config)
               for key, config in nextflow]
    drifted.append(("evaluate", step_config(["evaluate", "--model", "m", "--features", "f", "--loci", "l",
                                             "--expression", "e", "--outdir", "o"])))
    found = differences(runner, drifted)
    assert any("maf: enpact run 0.01, Nextflow 0.05" in p for p in found), found
    assert any(p.startswith("evaluate: only Nextflow runs this step") for p in found), found


def result_files(config: object) -> set[str]:
    """The files (not directories or patterns) a step writes, as its configuration names them."""
    return {f for f in written_files(step_of(config).name, config) if "*" not in f and Path(f).suffix}


@pytest.mark.parametrize("name", ["demo", "delete_personalized", "several_gwas", "contexts", "selected_loci",
                                  "contexts_reference_panel", "borzoi"])
def test_nextflow_publishes_the_results_layout_of_enpact_run(name, render_dir, tmp_path, monkeypatch):
    """Every file `enpact run` keeps under outdir, Nextflow publishes at the same path, and nothing else (the
    personalized stores only when enpact.layout.keeps_personalized says so)."""
    directory = render_dir / f"publish_{name}"
    directory.mkdir()
    monkeypatch.chdir(directory)
    outdir = tmp_path / "results"
    params = runner_params(name)
    kept = {"pipeline_info/params.json"}
    for _key, config in runner_steps(params, outdir, monkeypatch):
        kept |= {str(Path(f).relative_to(outdir)) for f in result_files(config)}
    if not keeps_personalized(params):
        kept = {f for f in kept if not f.startswith("personalized/")}
    steps = dict(nextflow_steps(name, directory))
    outputs = {key: sorted(result_files(config)) for key, config in steps.items()}
    outputs["check"] = ["pipeline_info/params.json"]
    _tasks, results = render_tasks(name, directory, outputs)
    nextflow_outdir = profile_params(PARAM_FILES[name][0], PARAM_FILES[name][1])["outdir"]
    published = {str(Path(path).relative_to(nextflow_outdir)) for result in results.values()
                 for path in (result["published"] or {}).values() if path}
    assert published == kept, (f"only Nextflow publishes {sorted(published - kept)}; "
                               f"only enpact run keeps {sorted(kept - published)}")


def test_the_report_task_stages_its_inputs_where_the_results_layout_puts_them(tmp_path):
    """ENPACT_REPORT stages the published results into the layout `enpact report` reads (enpact.layout)."""
    import re

    from enpact.layout import ResultsLayout

    layout = ResultsLayout(tmp_path)
    where = {
        "params_json": layout.params_json, "model": layout.model_json, "accuracy": layout.accuracy_table,
        "databases": layout.database("n"), "twas": layout.twas_table("g"), "multixcan": layout.multixcan_table("g"),
    }
    text = (ROOT / "modules" / "enpact_report" / "main.nf").read_text()
    staged = dict(re.findall(r"path\((\w+), stageAs: '([^']+)'\)", text))
    assert set(staged) == set(where), staged
    for name, pattern in staged.items():
        relative = str(where[name].relative_to(tmp_path))
        assert relative == pattern or Path(relative).parent == Path(pattern).parent and pattern.endswith("/*"), \
            f"ENPACT_REPORT stages {name} as {pattern}, enpact.layout puts it at {relative}"
    assert re.search(r'path\("report/\*"\)', text) and layout.report.name == "report"
