"""The contract between the Nextflow modules and the `enpact` CLI (DESIGN.md section 2).

The tasks the workflow runs for every parameter file of tests/test_nextflow_parity.py are rendered as Nextflow would
render them (tests/nextflow/render_modules.groovy: ext.prefix from conf/modules.config, the module's Groovy preamble,
the inputs the workflow stages and the options ENPACT_CHECK gives the task's step). Then, for every task:

- its `enpact ...` command line is accepted by `enpact.cli.build_parser()` and runs the module's step (the CLI's own
  parser is the judge: a renamed option on either side fails here);
- its step's options reach the command line as they are (a module that drops `${options}` fails here);
- every output the module declares is a file that subcommand writes according to docs/cli-contract.md
  (e.g. `--out X` -> X, `--outdir D` -> D/...);
- GPU-labelled modules pass `--device cuda` with use_gpu and the `device` parameter without;
and each module's rendered `stub:` script, run with bash, creates every declared (non-optional) output.
"""

from __future__ import annotations

import contextlib
import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "nextflow"))

from nf_tooling import (  # noqa: E402
    ROOT,
    _norm,
    enpact_commands,
    module_files,
    parse_command,
    parse_process,
    render_entries,
    script_file,
    stage_inputs,
    subcommand_of,
    written_files,
)
from test_nextflow_parity import PARAM_FILES, module_of, render_workflows, workflow_tasks  # noqa: E402

MODULES = module_files()
MUTATIONS = {
    # a renamed option in a module script
    "bad_option": ("ENPACT_PREDICT", "--loci ${loci}", "--locus ${loci}"),
    # a declared output the subcommand does not write
    "bad_output": ("ENPACT_PREDICT", 'path("${prefix}.h5")', 'path("${prefix}.hdf5")'),
    # a module that drops its step's options
    "dropped_options": ("ENPACT_LINEARIZE", "        ${options} \\\\\n", ""),
}


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, dict]:
    """Every parameter file's tasks, scripts and stubs (one JVM), and the planted mutations (a second one)."""
    directory = tmp_path_factory.mktemp("contract")
    workflows = render_workflows(list(PARAM_FILES), directory, sections=("script", "stub"))
    _profiles, params, tasks = workflow_tasks("demo", directory / "mutations")
    entries = []
    for name, (process_name, old, new) in MUTATIONS.items():
        original = module_of(process_name).read_text()
        assert old in original, f"mutation {name}: {old!r} no longer in {process_name}'s module; update MUTATIONS"
        copy = directory / name / module_of(process_name).relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(original.replace(old, new))
        key, inputs = next((key, inputs) for process, key, inputs in tasks if process == process_name)
        entries.append({"id": name, "process": process_name, "labels": [], "configs": [], "params": params,
                        "inputs": inputs, "script_file": str(script_file(parse_process(copy), "script", directory))})
    # a context row's own annotation format: after the step's options, so it wins
    key, inputs = next((key, inputs) for process, key, inputs in tasks if process == "ENPACT_LOCI")
    entries.append({"id": "annotation_format", "process": "ENPACT_LOCI", "labels": [], "configs": [], "params": params,
                    "inputs": {**inputs, "meta": {"id": "liver", "context": "liver", "annotation_format": "bed"}},
                    "script_file": str(script_file(parse_process(module_of("ENPACT_LOCI")), "script", directory))})
    for entry in entries:
        stage_inputs(entry["inputs"], directory / "mutations")
    workflows["mutations"] = {"params": params, "directory": directory / "mutations",
                              "results": render_entries(entries, directory),
                              "inputs": {entry["id"]: entry["inputs"] for entry in entries}}
    return workflows


def module_tasks(rendered: dict, module: Path) -> list[tuple[dict, str, dict]]:
    """(workflow, task key, inputs) of every rendered task the module runs."""
    return [(workflow, key, inputs) for name, workflow in rendered.items() if name in PARAM_FILES
            for process, key, inputs in workflow["tasks"] if module_of(process) == module]


def covered(pattern: str, written: set[str]) -> bool:
    pattern = _norm(pattern)
    return any(pattern == w or fnmatch.fnmatch(pattern, w) or fnmatch.fnmatch(w, pattern) for w in written)


def contract_problems(result: dict, module: Path, inputs: dict, device: str) -> list[str]:
    """Everything wrong with one rendered module script, its inputs staged in the working directory (empty list: the
    contract holds); `device`: the one its GPU-labelled tasks must pass."""
    if result["error"]:
        return [f"rendering failed: {result['error']}"]
    process = parse_process(module)
    commands = enpact_commands(result["script"])
    if len(commands) != 1:
        return [f"expected one `enpact` command line in the script, found {len(commands)}:\n{result['script']}"]
    ns, error = parse_command(commands[0])
    if error:
        return [f"`{commands[0]}` is rejected by the enpact CLI: {error}"]
    problems = []
    expected = subcommand_of(module)
    if ns.command != expected:
        problems.append(f"module {module.parent.name} runs `enpact {ns.command}`, expected `enpact {expected}`")
    if inputs.get("options") and f" {inputs['options']} " not in f" {commands[0]} ":
        problems.append(f"the step's options ({inputs['options']!r}) do not reach `{commands[0]}`")
    written = written_files(ns.command, ns)
    for pattern in result["outputs"]:
        if not covered(pattern, written):
            problems.append(f"declared output {pattern!r} is not written by `{commands[0]}` (it writes {sorted(written)})")
    if "process_gpu" in process.labels and getattr(ns, "device", None) != device:
        problems.append(f"GPU-labelled process must pass --device {device}, got {getattr(ns, 'device', None)}")
    return problems


def device_of(params: dict) -> str:
    return "cuda" if str(params.get("use_gpu")).lower() == "true" else params["device"]


# --------------------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------------------

def test_a_module_for_every_step_a_task_runs():
    from enpact.steps import STEPS

    assert {subcommand_of(m) for m in MODULES} == {name for name, step in STEPS.items() if step.task} | {"check"}


@pytest.mark.parametrize("module", MODULES, ids=[m.parent.name for m in MODULES])
def test_module_command_lines_follow_the_cli(module, rendered):
    tasks = module_tasks(rendered, module)
    assert tasks, f"no parameter file of tests/test_nextflow_parity.py runs {module.parent.name}"
    failures = []
    for workflow, key, inputs in tasks:
        with contextlib.chdir(workflow["directory"]):
            problems = contract_problems(workflow["results"][f"{key}|script"], module, inputs,
                                         device_of(workflow["params"]))
        failures += [f"{workflow['directory'].name} {key}: {p}" for p in problems]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("module", MODULES, ids=[m.parent.name for m in MODULES])
def test_stub_creates_declared_outputs(module, rendered, tmp_path):
    process = parse_process(module)
    workflow, key, inputs = module_tasks(rendered, module)[0]
    result = workflow["results"][f"{key}|stub"]
    assert not result["error"], result["error"]
    stage_inputs(inputs, tmp_path)
    proc = subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-c", result["script"]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"stub of {process.name} failed: {proc.stderr}"
    optional = {p for out in process.outputs if out.optional for p in out.patterns}
    patterns = [p for o in process.outputs for p in o.patterns]
    for raw, pattern in zip(patterns, result["outputs"]):
        if raw not in optional:
            assert list(tmp_path.glob(pattern)), f"stub of {process.name} does not create {pattern!r}"


def planted(rendered: dict, name: str) -> list[str]:
    """The problems found in a mutated module (MUTATIONS)."""
    mutations = rendered["mutations"]
    with contextlib.chdir(mutations["directory"]):
        return contract_problems(mutations["results"][name], module_of(MUTATIONS[name][0]),
                                 mutations["inputs"][name], device_of(mutations["params"]))


def test_checker_catches_a_renamed_option(rendered):
    problems = planted(rendered, "bad_option")
    assert problems and "--locus" in problems[0], problems


def test_checker_catches_an_output_the_command_does_not_write(rendered):
    assert any(".hdf5" in p for p in planted(rendered, "bad_output")), planted(rendered, "bad_output")


def test_checker_catches_a_module_that_drops_its_options(rendered):
    problems = planted(rendered, "dropped_options")
    assert any("do not reach" in p and "--maf 0.01" in p for p in problems), problems


def test_per_task_values_reach_the_command_line(rendered):
    """What a module adds to its step's options: the task's context, part, plan, weights, a context's annotation
    format (after the options, so it wins), the database name, its inputs in order."""
    def parsed(name: str, key: str):
        workflow = rendered[name]
        with contextlib.chdir(workflow["directory"]):
            ns, error = parse_command(enpact_commands(workflow["results"][key]["script"])[0])
        assert error is None, error
        return ns

    ns = parsed("contexts", "linearize/liver/ENSGDEMO00061.1--ENSGDEMO00120.1|script")
    assert ns.context == "liver" and ns.maf == 0.01 and ns.folds == 10
    ns = parsed("mutations", "annotation_format")
    assert ns.annotation_format == "bed" and ns.train_chroms == "chr1,chr2,chr3,chr4"
    ns = parsed("demo", "database|script")
    assert ns.population == "simulated" and ns.name == "enpact_demo"
    assert [str(p) for p in ns.linearized] == sorted(str(p) for p in ns.linearized) and len(ns.linearized) == 2
    chunk = "ENSGDEMO00001.1--ENSGDEMO00060.1"
    ns = parsed("gpu_run", f"personalize/{chunk}/part0|script")
    assert ns.weights == "EleutherAI/enformer-official-rough" and ns.device == "cuda" and ns.batch_size == 16
    assert str(ns.out) == f"{chunk}.part0000.h5" and ns.part == 0 and str(ns.plan) == f"{chunk}.h5"
