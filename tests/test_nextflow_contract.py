"""The contract between the Nextflow modules and the `enpact` CLI (DESIGN.md section 2).

Every module's script is rendered the way Nextflow would render it (tests/nextflow/render_modules.groovy:
ext.args/ext.prefix from conf/base.config + conf/modules.config with the parameters of nextflow.config, the
module's own Groovy preamble, sample inputs), for the default parameters and for a scenario in which every
optional parameter is set, with and without --use_gpu. Then:

- each `enpact ...` command line of the script must be accepted by `enpact.cli.build_parser()` (the CLI's own
  parser is the judge: a renamed option on either side fails here);
- every output the module declares must be a file that subcommand writes according to docs/cli-contract.md
  (e.g. `--out X` -> X, `--outdir D` -> D/...);
- GPU-labelled modules pass `--device cuda` with --use_gpu and `--device cpu` without;
- the rendered `stub:` script, run with bash, creates every declared (non-optional) output.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import io
import json
import posixpath
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "nextflow"))

from nf_tooling import (  # noqa: E402
    ROOT,
    Process,
    StagedFile,
    StagedFiles,
    config_params,
    module_files,
    parse_process,
    render_entries,
)

F, FL = StagedFile, StagedFiles
CHUNK = "ENSGDEMO00001.1--ENSGDEMO00060.1"
SAMPLES = "IND001--IND040"
FASTA = {"meta2": {"id": "genome"}, "fasta": F("genome.fa"), "fai": F("genome.fa.fai")}
WEIGHTS_DIR = {"weights_id": "", "weights_dir": F("weights/enformer_tiny")}
WEIGHTS_HUB = {"weights_id": "EleutherAI/enformer-official-rough", "weights_dir": []}


NO_CONTEXTS = {"meta7": {"id": "contexts"}, "contexts": [], "context_files": []}
NO_PANEL = {"meta5": {"id": "samples"}, "panel_samples": []}


def vcf(meta: str) -> dict:
    return {meta: {"id": "genotypes"}, "vcf": F("genotypes.vcf.gz"), "tbi": F("genotypes.vcf.gz.tbi")}


# Sample inputs of every process, by the input variable names the module declares (one dict per variant)
SAMPLE_INPUTS: dict[str, list[dict]] = {
    "ENPACT_CHECK": [
        {"meta": {"id": "params"}, "nextflow_params": F("nextflow_params.json"), **FASTA,
         "meta3": {"id": "loci"}, "annotation": F("genes.gtf"), "meta4": {"id": "expression"},
         "expression": F("expression.tsv"), **vcf("meta5"), "meta6": {"id": "samples"}, "samples": [],
         "gwas": FL(("gwas/1/height.tsv.gz", "gwas/2/ldl.txt")), **NO_CONTEXTS},
        {"meta": {"id": "params"}, "nextflow_params": F("nextflow_params.json"), **FASTA,
         "meta3": {"id": "loci"}, "annotation": [], "meta4": {"id": "expression"},
         "expression": F("expression.tsv"), **vcf("meta5"), "meta6": {"id": "samples"}, "samples": F("ids.txt"),
         "gwas": [], **NO_CONTEXTS},
        {"meta": {"id": "params"}, "nextflow_params": F("nextflow_params.json"), **FASTA,
         "meta3": {"id": "loci"}, "annotation": F("genes.gtf"), "meta4": {"id": "expression"}, "expression": [],
         **vcf("meta5"), "meta6": {"id": "samples"}, "samples": [], "gwas": F("gwas/1/gwas.tsv.gz"),
         "meta7": {"id": "contexts"}, "contexts": F("contexts.csv"),
         "context_files": FL(("contexts/1/expression.tsv", "contexts/2/expression_liver.tsv", "contexts/3/peaks.bed"))},
    ],
    "ENPACT_LOCI": [
        {"meta": {"id": "loci"}, "annotation": F("genes.gtf"), "expression": F("expression.tsv"), **FASTA},
        {"meta": {"id": "loci"}, "annotation": [], "expression": F("peaks.tsv"), **FASTA},
        {"meta": {"id": "liver", "context": "liver", "annotation_format": "bed"}, "annotation": F("peaks.bed"),
         "expression": F("expression_liver.tsv"), **FASTA},
    ],
    "ENPACT_LOCI_UNION": [
        {"meta": {"id": "loci", "contexts": ["blood", "liver"]},
         "loci": FL(("contexts/1/blood.tsv", "contexts/2/liver.tsv"))},
    ],
    "ENPACT_CHUNK": [
        {"meta": {"id": "loci"}, "loci": F("loci.tsv"), **vcf("meta2"), "meta3": {"id": "samples"}, "samples": []},
        {"meta": {"id": "loci"}, "loci": F("loci.tsv"), **vcf("meta2"), "meta3": {"id": "samples"},
         "samples": F("samples.txt")},
    ],
    "ENPACT_PREDICT": [
        {"meta": {"id": CHUNK, "n_loci_chunks": 5}, "loci": F(f"{CHUNK}.tsv"), **FASTA, **WEIGHTS_DIR},
        {"meta": {"id": CHUNK, "n_loci_chunks": 5}, "loci": F(f"{CHUNK}.tsv"), **FASTA, **WEIGHTS_HUB},
    ],
    "ENPACT_MERGE_FEATURES": [
        {"meta": {"id": "reference"}, "stores": FL((f"chunks/{CHUNK}.h5", "chunks/ENSGDEMO00061.1--ENSGDEMO00120.1.h5"))},
        {"meta": {"id": "reference"}, "stores": F(f"chunks/{CHUNK}.h5")},
    ],
    "ENPACT_TRAIN": [
        {"meta": {"id": "loci"}, "features": F("reference.h5"), "loci": F("loci.tsv"),
         "expression": F("expression.tsv")},
        {"meta": {"id": "liver", "context": "liver"}, "features": F("reference.h5"), "loci": F("liver.tsv"),
         "expression": F("expression_liver.tsv")},
    ],
    "ENPACT_PERSONALIZE": [
        {"meta": {"id": CHUNK, "n_loci_chunks": 5, "part": 0, "n_parts": 2},
         "loci": F(f"{CHUNK}.tsv"), "plan": F(f"{CHUNK}.plan.h5"), **FASTA, **vcf("meta3"),
         "meta4": {"id": "models", "contexts": []}, "model": F("enpact_model/model"), **WEIGHTS_DIR, **NO_PANEL},
        {"meta": {"id": CHUNK, "n_loci_chunks": 5, "part": 1, "n_parts": 2},
         "loci": F(f"{CHUNK}.tsv"), "plan": F(f"{CHUNK}.plan.h5"), **FASTA, **vcf("meta3"),
         "meta4": {"id": "models", "contexts": []}, "model": F("enpact_model/model"), **WEIGHTS_HUB,
         "meta5": {"id": "samples"}, "panel_samples": F("panel/ids.txt")},
        {"meta": {"id": CHUNK, "n_loci_chunks": 5, "part": 0, "n_parts": 1},
         "loci": F(f"{CHUNK}.tsv"), "plan": F(f"{CHUNK}.plan.h5"), **FASTA, **vcf("meta3"),
         "meta4": {"id": "models", "contexts": ["blood", "liver"]},
         "model": FL(("enpact_model/blood", "enpact_model/liver")), **WEIGHTS_DIR, **NO_PANEL},
    ],
    "ENPACT_PLAN": [
        {"meta": {"id": CHUNK, "n_loci_chunks": 5}, "loci": F(f"{CHUNK}.tsv"), **FASTA, **vcf("meta3"),
         "meta4": {"id": "samples"}, "samples": [], "meta5": {"id": "reference"}, "features": F("reference.h5")},
        {"meta": {"id": CHUNK, "n_loci_chunks": 5}, "loci": F(f"{CHUNK}.tsv"), **FASTA, **vcf("meta3"),
         "meta4": {"id": "samples"}, "samples": F("ids.txt"), "meta5": {"id": "reference"},
         "features": F("reference.h5")},
    ],
    "ENPACT_MERGE": [
        {"meta": {"id": CHUNK, "n_loci_chunks": 5},
         "stores": FL((f"chunks/{CHUNK}.part0000.h5", f"chunks/{CHUNK}.part0001.h5")), "plan": F(f"{CHUNK}.h5")},
    ],
    "ENPACT_LINEARIZE": [
        {"meta": {"id": CHUNK, "n_loci_chunks": 5}, "personalized": F(f"{CHUNK}.h5"), "loci": F(f"{CHUNK}.tsv"),
         **vcf("meta2")},
        {"meta": {"id": CHUNK, "n_loci_chunks": 5, "context": "liver"}, "personalized": F(f"{CHUNK}.h5"),
         "loci": F(f"{CHUNK}.tsv"), **vcf("meta2")},
    ],
    "ENPACT_SELECT": [
        {"meta": {"id": "selected"}, "loci": F("loci.tsv"), "features": F("reference.h5"),
         "meta2": {"id": "gwas"}, "gwas": F("gwas.tsv.gz"), "meta3": {"id": "credible_sets"}, "credible_sets": [],
         "meta4": {"id": "regions"}, "regions": []},
        {"meta": {"id": "selected"}, "loci": F("loci.tsv"), "features": F("reference.h5"),
         "meta2": {"id": "gwas"}, "gwas": [], "meta3": {"id": "credible_sets"}, "credible_sets": F("credible.tsv"),
         "meta4": {"id": "regions"}, "regions": F("regions.bed")},
    ],
    "ENPACT_DATABASE": [
        {"meta": {"id": "databases"}, "linearized": FL(tuple(
            f"chunks/{c}.h5" for c in (CHUNK, "ENSGDEMO00061.1--ENSGDEMO00120.1")))},
        {"meta": {"id": "databases", "context": "liver"}, "linearized": FL(tuple(
            f"chunks/{c}.h5" for c in (CHUNK, "ENSGDEMO00061.1--ENSGDEMO00120.1")))},
    ],
    "ENPACT_TWAS": [
        {"meta": {"id": "gwas.tsv.gz"}, "gwas": F("gwas.tsv.gz"), "meta2": {"id": "databases"}, "db": F("enpact.db"),
         "covariance": F("enpact.txt.gz")},
        {"meta": {"id": "liver"}, "gwas": FL(("height.tsv.gz", "ldl.txt")),
         "meta2": {"id": "databases", "context": "liver"}, "db": F("enpact_liver.db"),
         "covariance": F("enpact_liver.reference_panel.txt.gz")},
    ],
    "ENPACT_COVARIANCE": [
        {"meta": {"id": "enpact_liver"}, "databases": F("databases/enpact_liver.db"), **vcf("meta2"),
         "meta3": {"id": "panel_samples"}, "samples": F("panel_ids.txt")},
        {"meta": {"id": "snp_covariance"}, "databases": FL(("databases/enpact_blood.db", "databases/enpact_liver.db")),
         **vcf("meta2"), "meta3": {"id": "panel_samples"}, "samples": []},
    ],
    "ENPACT_MULTIXCAN": [
        {"meta": {"id": "gwas.tsv.gz"}, "gwas": F("gwas.tsv.gz"),
         "meta2": {"id": "contexts", "contexts": ["blood", "liver"]},
         "databases": FL(("databases/enpact_blood.db", "databases/enpact_liver.db")),
         "twas": FL(("twas/blood", "twas/liver")), "covariance": F("snp_covariance.txt.gz")},
    ],
    "ENPACT_ACCURACY": [
        {"meta": {"id": "accuracy"}, "stores": FL((f"personalized/{CHUNK}.h5", "personalized/ENSGDEMO00061.1--ENSGDEMO00120.1.h5")),
         "expression": F("expression.tsv")},
        {"meta": {"id": "accuracy"}, "stores": F(f"personalized/{CHUNK}.h5"), "expression": F("expression.tsv")},
        {"meta": {"id": "accuracy", "context": "liver"}, "stores": F(f"personalized/{CHUNK}.h5"),
         "expression": F("expression_liver.tsv")},
    ],
    "ENPACT_REPORT": [
        {"meta": {"id": "report"}, "params_json": F("pipeline_info/params.json"), "truth": F("causal_genes.tsv"),
         "model": FL(("model/model.json", "model/metrics.json", "model/weights.npz")),
         "accuracy": FL(("accuracy/personalized_accuracy.tsv", "accuracy/personalized.json")),
         "databases": FL(("linearized/enpact.db", "linearized/enpact.summary.tsv", "linearized/enpact.txt.gz")),
         "twas": FL(("twas/gwas.csv", "twas/gwas.qq.png")), "multixcan": []},
        {"meta": {"id": "report"}, "params_json": F("pipeline_info/params.json"), "truth": [],
         "model": FL(("model/model.json", "model/metrics.json")),
         "accuracy": FL(("accuracy/personalized_accuracy.tsv", "accuracy/personalized.json")),
         "databases": FL(("linearized/enpact.db", "linearized/enpact.summary.tsv", "linearized/enpact.txt.gz")),
         "twas": [], "multixcan": []},
        {"meta": {"id": "report"}, "params_json": F("pipeline_info/params.json"), "truth": [],
         "model": FL(("model/blood", "model/liver")), "accuracy": FL(("accuracy/blood", "accuracy/liver")),
         "databases": FL(("linearized/enpact_blood.db", "linearized/enpact_liver.db")),
         "twas": FL(("twas/blood", "twas/liver")), "multixcan": FL(("multixcan/gwas.tsv", "multixcan/gwas.qq.png"))},
    ],
}

# Values for parameters whose default is null, in the scenario where every option is set
OPTION_VALUES = {
    "train_chroms": "chr1,chr2,chr3", "valid_chroms": "chr5", "test_chroms": "chr6",
    "gene_types": "protein_coding,lncRNA", "baseline_track": "CAGE:demo 1", "population": "simulated Europeans",
    "window_bp": 4096, "lin_window_bp": 2048, "lin_gwas_pvalue": 5e-8, "gwas_se_column": "standard_error",
    "gwas_or_column": "odds_ratio",
}
# Non-default choices of parameters that have a default, in the same scenario
OPTION_CHOICES = {"personalize_variants": "linearizable"}


def subcommand_of(module: Path) -> str:
    """modules/enpact_merge_features/main.nf -> merge-features."""
    return module.parent.name.removeprefix("enpact_").replace("_", "-")


def scenarios() -> dict[str, dict]:
    """Parameter sets: nextflow.config defaults, and every optional parameter set / flag switched on."""
    defaults = config_params()
    schema = json.loads((ROOT / "nextflow_schema.json").read_text())
    types = {name: spec.get("type") for group in schema["$defs"].values() for name, spec in group["properties"].items()}
    everything = dict(defaults)
    for name, value in defaults.items():
        if value is None:
            everything[name] = OPTION_VALUES.get(name, {"integer": 7, "number": 0.5}.get(types.get(name), "x"))
        elif value is False and name not in ("use_gpu", "help", "monochrome_logs", "delete_personalized"):
            everything[name] = True
    return {"defaults": defaults, "all_options": {**everything, **OPTION_CHOICES}}


# --------------------------------------------------------------------------------------------------------------
# Rendering (one JVM for every module, scenario and mutation)
# --------------------------------------------------------------------------------------------------------------

def script_file(process: Process, section: str, directory: Path) -> Path:
    """The module's script (or stub) section as a Groovy script returning [script:, outputs:]."""
    preamble, string = process.split_script(section)
    outputs = [lit for out in process.outputs for lit in out.literals]
    tag = hashlib.sha1(str(process.path).encode()).hexdigest()[:8]
    path = directory / f"{process.path.parent.name}.{tag}.{section}.groovy"
    path.write_text(f"{preamble}\nreturn [script: ({string}), outputs: [{', '.join(outputs)}]]\n")
    return path


def render(cases: list[dict], directory: Path) -> dict[str, dict]:
    """Render cases [{id, module (path), section, configs, params, use_gpu, inputs}] -> {id: result}."""
    entries = []
    for case in cases:
        process = parse_process(case["module"])
        params = dict(case["params"], use_gpu=case["use_gpu"])
        entries.append({
            "id": case["id"], "process": process.name, "labels": process.labels,
            "configs": [str(c) for c in case["configs"]], "script_file": str(script_file(process, case["section"], directory)),
            "params": params, "use_gpu": case["use_gpu"], "inputs": case["inputs"],
        })
    return render_entries(entries, directory)


CONFIGS = [ROOT / "conf" / "base.config", ROOT / "conf" / "modules.config"]


def cases_for(module: Path, configs: list[Path] = CONFIGS, name: str | None = None) -> list[dict]:
    process = parse_process(module)
    cases = []
    for scenario, params in scenarios().items():
        for use_gpu in (False, True):
            for index, inputs in enumerate(SAMPLE_INPUTS.get(process.name, [])):
                for section in ("script", "stub"):
                    case_id = f"{name or process.name}|{scenario}|gpu={use_gpu}|inputs={index}|{section}"
                    cases.append(dict(id=case_id, module=module, section=section, configs=configs, params=params,
                                      use_gpu=use_gpu, inputs=inputs))
    return cases


MUTATIONS = {
    # a renamed option in a module script
    "bad_option": ("modules/enpact_predict/main.nf", "--loci ${loci}", "--locus ${loci}"),
    # a declared output the subcommand does not write
    "bad_output": ("modules/enpact_predict/main.nf", 'path("${prefix}.h5")', 'path("${prefix}.hdf5")'),
    # a renamed option in conf/modules.config (ext.args)
    "bad_ext_args": ("conf/modules.config", '"--folds ${params.lin_folds}"', '"--n-folds ${params.lin_folds}"'),
}


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, dict]:
    directory = tmp_path_factory.mktemp("nf_render")
    cases = [case for module in module_files() for case in cases_for(module)]
    for name, (relative, old, new) in MUTATIONS.items():
        original = (ROOT / relative).read_text()
        assert old in original, f"mutation {name}: {old!r} no longer in {relative}; update MUTATIONS"
        copy = directory / name / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(original.replace(old, new))
        if relative.startswith("modules/"):
            cases += [c for c in cases_for(copy, name=name) if "|defaults|gpu=False|inputs=0|script" in c["id"]]
        else:
            configs = [ROOT / "conf" / "base.config", copy]
            cases += [c for c in cases_for(ROOT / "modules/enpact_linearize/main.nf", configs, name=name)
                      if "|defaults|gpu=False|inputs=0|script" in c["id"]]
    return render(cases, directory)


# --------------------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------------------

def enpact_commands(script: str) -> list[str]:
    """The `enpact ...` command lines of a rendered shell script (continuation lines joined)."""
    joined = re.sub(r"\\\n", " ", script)
    return [line.strip() for line in joined.splitlines() if line.strip().split(" ", 1)[0] == "enpact"]


def stage_inputs(inputs: dict, directory: Path) -> None:
    """Create every staged input (a directory when the name has no dot), as Nextflow would stage it."""
    names = []
    for value in inputs.values():
        if isinstance(value, StagedFile):
            names.append(value.name)
        elif isinstance(value, StagedFiles):
            names += value.names
    for name in names:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if "." in Path(name).name:
            path.touch()
        else:
            path.mkdir(exist_ok=True)


def parse_command(line: str):
    """Parse with the CLI's own parser: (namespace, None) or (None, error message)."""
    from enpact.cli import build_parser

    argv = shlex.split(line)[1:]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return build_parser().parse_args(argv), None
    except SystemExit as err:
        return None, f"exit {err.code}: {stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue().strip() else ''}"


def _norm(path: object) -> str:
    return posixpath.normpath(str(path))


def written_files(command: str, ns) -> set[str]:
    """Files (glob patterns) a subcommand writes, from its parsed options (docs/cli-contract.md, outputs column)."""
    def under(directory, *names):
        return {_norm(directory)} | {_norm(f"{directory}/{n}") for n in names}

    if command == "check":
        return {_norm(ns.out)}
    if command == "loci":
        out = _norm(ns.out)
        return {out, re.sub(r"\.tsv$", "", out) + ".dropped.tsv"}
    if command == "chunk":
        return under(ns.outdir, "loci", "samples", "loci/*.tsv", "samples/*.txt")
    if command == "plan":
        return {_norm(ns.out)} | ({_norm(ns.parts_file)} if ns.parts_file else set())
    if command in ("predict", "merge-features", "personalize", "merge"):
        files = {_norm(ns.out)}
        if getattr(ns, "export_matrix", None):
            files.add(_norm(ns.export_matrix))
        return files
    if command == "train":
        return under(ns.outdir, "*", "model.json", "metrics.json", "predictions.tsv", "*.png", "weights.*")
    if command == "evaluate":
        return under(ns.outdir, "metrics.json", "*.png")
    if command == "linearize":
        return {_norm(ns.out)}
    if command == "database":
        return {_norm(f"{ns.outdir}/{ns.name}{suffix}") for suffix in
                (".db", ".txt.gz", ".summary.tsv", ".unfiltered.db", ".unfiltered.txt.gz")}
    if command == "twas":
        from enpact.twas import output_paths, plot_prefixes

        files = {_norm(p) for p in output_paths(ns.gwas_file, ns.output_file)}
        files |= {_norm(Path(p).parent) for p in files if Path(p).parent != Path(".")}   # the folder of the results
        if ns.plots_prefix:
            for prefix in plot_prefixes(ns.gwas_file, ns.plots_prefix):
                files |= {_norm(f"{prefix}.qq.png"), _norm(f"{prefix}.manhattan.png")}
        return files
    if command == "select":
        return {_norm(ns.out), _norm(ns.chunks), _norm(f"{ns.chunks}/*.tsv")}
    if command == "loci-union":
        return {_norm(ns.out)}
    if command == "covariance":
        return {_norm(ns.out)}
    if command == "multixcan":
        from enpact.layout import gwas_name

        name = gwas_name(ns.gwas_file) if ns.gwas_file else "{gwas}"
        return {_norm(str(p).replace("{gwas}", name)) for p in (ns.output, ns.qq_plot) if p}
    if command == "accuracy":
        return under(ns.outdir, "personalized_accuracy.tsv", "personalized.json")
    if command == "report":
        return under(f"{ns.outdir}/report", "index.html", "summary.json", "*")
    raise AssertionError(f"no output contract for `enpact {command}`: add it to written_files()")


def covered(pattern: str, written: set[str]) -> bool:
    pattern = _norm(pattern)
    return any(pattern == w or fnmatch.fnmatch(pattern, w) or fnmatch.fnmatch(w, pattern) for w in written)


def contract_problems(result: dict, module: Path, inputs: dict, use_gpu: bool, directory: Path,
                      device: str = "auto") -> list[str]:
    """Everything wrong with one rendered module script (empty list: the contract holds)."""
    if result["error"]:
        return [f"rendering failed: {result['error']}"]
    process = parse_process(module)
    commands = enpact_commands(result["script"])
    if len(commands) != 1:
        return [f"expected one `enpact` command line in the script, found {len(commands)}:\n{result['script']}"]
    stage_inputs(inputs, directory)
    ns, error = parse_command(commands[0])
    if error:
        return [f"`{commands[0]}` is rejected by the enpact CLI: {error}"]
    problems = []
    expected = subcommand_of(module)
    if ns.command != expected:
        problems.append(f"module {module.parent.name} runs `enpact {ns.command}`, expected `enpact {expected}`")
    written = written_files(ns.command, ns)
    for pattern in result["outputs"]:
        if not covered(pattern, written):
            problems.append(f"declared output {pattern!r} is not written by `{commands[0]}` (it writes {sorted(written)})")
    if "process_gpu" in process.labels:
        want = "cuda" if use_gpu else device
        if getattr(ns, "device", None) != want:
            problems.append(f"GPU-labelled process must pass --device {want} (use_gpu={use_gpu}), got {getattr(ns, 'device', None)}")
    return problems


# --------------------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------------------

MODULES = module_files()


def test_modules_exist_for_every_pipeline_step():
    steps = {subcommand_of(m) for m in MODULES}
    expected = {"check", "loci", "chunk", "predict", "merge-features", "train", "personalize", "merge",
                "accuracy", "linearize", "database", "twas", "report"}
    assert expected <= steps, f"missing modules for: {sorted(expected - steps)}"


@pytest.mark.parametrize("module", MODULES, ids=[m.parent.name for m in MODULES])
def test_sample_inputs_match_module_inputs(module):
    process = parse_process(module)
    assert process.name in SAMPLE_INPUTS, f"add sample inputs for {process.name} to SAMPLE_INPUTS"
    for inputs in SAMPLE_INPUTS[process.name]:
        assert list(inputs) == process.input_names, (
            f"{module}: inputs are {process.input_names}; SAMPLE_INPUTS has {list(inputs)}")


@pytest.mark.parametrize("module", MODULES, ids=[m.parent.name for m in MODULES])
def test_module_command_lines_follow_the_cli(module, rendered, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    process = parse_process(module)
    failures = []
    for case in cases_for(module):
        if case["section"] != "script":
            continue
        problems = contract_problems(rendered[case["id"]], module, case["inputs"], case["use_gpu"], tmp_path,
                                     case["params"]["device"])
        failures += [f"{case['id']}: {p}" for p in problems]
    assert not failures, f"{process.name}:\n" + "\n".join(failures)


@pytest.mark.parametrize("module", MODULES, ids=[m.parent.name for m in MODULES])
def test_stub_creates_declared_outputs(module, rendered, tmp_path):
    process = parse_process(module)
    case = next(c for c in cases_for(module) if c["id"].endswith("|defaults|gpu=False|inputs=0|stub"))
    result = rendered[case["id"]]
    assert not result["error"], result["error"]
    stage_inputs(case["inputs"], tmp_path)
    proc = subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-c", result["script"]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"stub of {process.name} failed: {proc.stderr}"
    optional = {p for out in process.outputs if out.optional for p in out.patterns}
    declared = [(raw, pattern) for raw, pattern in zip([p for o in process.outputs for p in o.patterns], result["outputs"])]
    for raw, pattern in declared:
        if raw in optional:
            continue
        assert list(tmp_path.glob(pattern)), f"stub of {process.name} does not create {pattern!r}"


def test_checker_catches_a_renamed_option(rendered, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    case = next(c for c in rendered if c.startswith("bad_option|"))
    problems = contract_problems(rendered[case], ROOT / "modules/enpact_predict/main.nf",
                                 SAMPLE_INPUTS["ENPACT_PREDICT"][0], False, tmp_path)
    assert problems and "--locus" in problems[0], problems


def test_checker_catches_an_output_the_command_does_not_write(rendered, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    case = next(c for c in rendered if c.startswith("bad_output|"))
    problems = contract_problems(rendered[case], ROOT / "modules/enpact_predict/main.nf",
                                 SAMPLE_INPUTS["ENPACT_PREDICT"][0], False, tmp_path)
    assert any(".hdf5" in p for p in problems), problems


def test_checker_catches_a_renamed_option_in_ext_args(rendered, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    case = next(c for c in rendered if c.startswith("bad_ext_args|"))
    problems = contract_problems(rendered[case], ROOT / "modules/enpact_linearize/main.nf",
                                 SAMPLE_INPUTS["ENPACT_LINEARIZE"][0], False, tmp_path)
    assert problems and "--n-folds" in problems[0], problems


def test_rendered_options_follow_parameters(rendered, tmp_path, monkeypatch):
    """Spot checks that parameter values reach the command line (not only that it parses)."""
    monkeypatch.chdir(tmp_path)
    params = scenarios()["all_options"]
    script = rendered["ENPACT_LINEARIZE|all_options|gpu=False|inputs=1|script"]["script"]
    stage_inputs(SAMPLE_INPUTS["ENPACT_LINEARIZE"][1], tmp_path)
    ns, error = parse_command(enpact_commands(script)[0])
    assert error is None, error
    assert ns.maf == params["lin_maf"] and ns.folds == params["lin_folds"] and ns.alpha == params["lin_alpha"]
    assert ns.window_bp == params["lin_window_bp"] and ns.keep_indels and ns.context == "liver"
    script = rendered["ENPACT_SELECT|all_options|gpu=False|inputs=0|script"]["script"]
    stage_inputs(SAMPLE_INPUTS["ENPACT_SELECT"][0], tmp_path)
    ns, error = parse_command(enpact_commands(script)[0])
    assert error is None, error
    assert ns.gwas_pvalue_threshold == params["lin_gwas_pvalue"] and str(ns.gwas) == "gwas.tsv.gz"
    script = rendered["ENPACT_DATABASE|all_options|gpu=False|inputs=0|script"]["script"]
    ns, error = parse_command(enpact_commands(script)[0])
    assert error is None, error
    assert ns.population == "simulated Europeans" and ns.keep_unfiltered and ns.name == params["name"]
    assert [str(p) for p in ns.linearized] == sorted(str(p) for p in ns.linearized) and len(ns.linearized) == 2
    script = rendered["ENPACT_PERSONALIZE|defaults|gpu=True|inputs=1|script"]["script"]
    stage_inputs(SAMPLE_INPUTS["ENPACT_PERSONALIZE"][1], tmp_path)
    ns, error = parse_command(enpact_commands(script)[0])
    assert error is None, error
    assert ns.weights == "EleutherAI/enformer-official-rough" and ns.device == "cuda"
    assert str(ns.out) == f"{CHUNK}.part0001.h5" and ns.part == 1 and str(ns.plan) == f"{CHUNK}.plan.h5"
