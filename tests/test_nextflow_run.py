"""The real pipeline: `nextflow run` against `enpact run` on the bundled demo, where a Nextflow executable is at hand
(ENPACT_NEXTFLOW=/path/to/nextflow, or `nextflow` on PATH, with the nf-schema plugin reachable). Without one every
test here is skipped with the reason in pytest's summary; the static checks (test_nextflow_static.py, the contract
and parity tests) run everywhere.

What is checked, on one machine:
- both test profiles publish exactly the files `enpact run` writes (engine bookkeeping apart), and the databases,
  covariances, summaries, accuracy and TWAS tables, loci and model files byte for byte;
- every task's `enpact` command line, read from the run's work directories, is the configuration `enpact run` hands
  the same step (the parity the static test checks on rendered scripts, here from the real DAG);
- `-resume` runs no task, and after a changed linearization parameter (lin_maf) it reruns the tasks whose step's
  options changed and those after them, no predictor task; `-stub-run` publishes the whole layout; a run prints no
  warning;
- parameters mean what they mean to `enpact run`: an unknown one stops the run before any task, command-line
  booleans are honoured (`--delete_personalized false`, `--validate_params false`), `--help` exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "nextflow"))

from nf_tooling import enpact_commands  # noqa: E402
from test_nextflow_parity import ENGINE_DIFFERENCES, comparable, step_config  # noqa: E402


ROOT = Path(__file__).resolve().parents[1]
NEXTFLOW = os.environ.get("ENPACT_NEXTFLOW") or shutil.which("nextflow")
NO_NEXTFLOW = ("no nextflow executable (set ENPACT_NEXTFLOW=/path/to/nextflow or put nextflow on PATH): the pipeline "
               "itself was not run here; the static checks of the .nf files ran instead")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not NEXTFLOW, reason=NO_NEXTFLOW)]

# files only one engine writes: its own bookkeeping
ENPACT_RUN_ONLY = {"pipeline_info/steps.json", "pipeline_info/timings.tsv", "pipeline_info/software_versions.json"}
NEXTFLOW_ONLY = {"pipeline_info/execution_report.html", "pipeline_info/execution_timeline.html",
                 "pipeline_info/execution_trace.txt", "pipeline_info/pipeline_dag.html",
                 "pipeline_info/enpact_software_versions.yml"}
# published files whose bytes hold a time or a path (model.json: the staged weights path, fit seconds; the HDF5
# stores: their inputs' paths; the report: timings): compared by name, and the results themselves byte for byte
BYTE_COMPARED = ("loci/loci.tsv", "linearized/enpact_demo", "accuracy/", "twas/")
TRACE_CONFIG = """trace {
    enabled = true
    overwrite = true
    file = "${params.outdir}/pipeline_info/execution_trace.txt"
    fields = 'task_id,process,tag,name,status,exit,workdir'
}
"""


@dataclasses.dataclass
class NextflowRun:
    """One `nextflow run` of this checkout: its exit status, console output, published results and task trace."""
    returncode: int
    output: str
    outdir: Path
    trace: list[dict[str, str]]


def nextflow(launch: Path, *args: str, outdir: Path, timeout: int = 1800,
             env: dict[str, str] | None = None) -> NextflowRun:
    """Run the pipeline from a launch folder (work/ and .nextflow/ stay there), the trace with work directories."""
    launch.mkdir(parents=True, exist_ok=True)
    config = launch / "trace.config"
    config.write_text(TRACE_CONFIG)
    env = {**os.environ, "NXF_ANSI_LOG": "false", **(env or {})}
    command = [NEXTFLOW, "run", str(ROOT), "-ansi-log", "false", "-c", str(config), "--outdir", str(outdir), *args]
    proc = subprocess.run(command, cwd=launch, capture_output=True, text=True, timeout=timeout, env=env)
    trace_file = outdir / "pipeline_info" / "execution_trace.txt"
    trace = []
    if trace_file.exists():
        lines = trace_file.read_text().splitlines()
        header = lines[0].split("\t")
        trace = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
    return NextflowRun(proc.returncode, proc.stdout + proc.stderr, outdir, trace)


def enpact_run(demo: str, outdir: Path, monkeypatch) -> list[tuple[str, object]]:
    """`enpact run --demo DEMO` in process; (step key, configuration) of every step it ran."""
    from enpact import runner as runner_module
    from enpact.params import resolve_params

    recorded = []
    original = runner_module.Runner.step

    def record(self, group, key, config, outputs):
        recorded.append((key, config))
        return original(self, group, key, config, outputs)

    monkeypatch.setattr(runner_module.Runner, "step", record)
    runner_module.run_pipeline(resolve_params(None, {"outdir": str(outdir)}, demo), progress=False)
    return recorded


def published(outdir: Path) -> set[str]:
    """Every file under a results folder, relative to it."""
    return {str(p.relative_to(outdir)) for p in outdir.rglob("*") if p.is_file()}


def task_configs(run: NextflowRun, directory: Path) -> list[tuple[str, object]]:
    """(process, configuration) of every task: its `enpact` command line (.command.sh) as the CLI reads it, parsed in
    `directory` (the parser wants the input files a command line names: empty stand-ins are made there)."""
    configs = []
    for task in run.trace:
        if task["process"] == "SOFTWARE_VERSIONS":   # a native task: no script, no enpact
            continue
        commands = enpact_commands((Path(task["workdir"]) / ".command.sh").read_text())
        assert len(commands) == 1, f"{task['name']}: {commands}"
        with contextlib.chdir(directory):
            configs.append((task["process"].split(":")[-1], step_config(shlex.split(commands[0])[1:])))
    return configs


def unmatched(runner: list[tuple[str, object]], tasks: list[tuple[str, object]]) -> list[str]:
    """Configurations one engine runs and the other does not (file fields by name; ENGINE_DIFFERENCES apart)."""
    def key(config: object) -> str:
        step, values = comparable(config)
        return repr((step, sorted((k, repr(v)) for k, v in values.items() if (step, k) not in ENGINE_DIFFERENCES)))

    ours = Counter(key(config) for _key, config in runner)
    # `enpact run` checks the study and renders the report outside its resumable steps: those two tasks are held to
    # it by test_nextflow_parity.py (the recorded parameters; the report task's staging) and test_checks.py
    theirs = Counter(key(config) for process, config in tasks if process not in ("ENPACT_CHECK", "ENPACT_REPORT"))
    return ([f"only enpact run: {k}" for k in (ours - theirs)] +
            [f"only Nextflow: {k}" for k in (theirs - ours)])


def warnings(run: NextflowRun) -> list[str]:
    return [line for line in run.output.splitlines() if "WARN" in line]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The demo with both engines (module scope: each run takes minutes)."""
    return {}


def both(runs: dict, name: str, profile: str, demo: str, tmp_path_factory, monkeypatch_module) -> dict:
    if name not in runs:
        base = tmp_path_factory.mktemp(name)
        steps = enpact_run(demo, base / "enpact", monkeypatch_module)
        run = nextflow(base / "launch", "-profile", f"{profile},venv", outdir=base / "nextflow")
        runs[name] = {"base": base, "profile": profile, "steps": steps, "enpact": base / "enpact", "nextflow": run}
    return runs[name]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


DEMOS = {"test": "single", "test_contexts": "contexts"}   # profile: `enpact run --demo` kind


@pytest.fixture(scope="module", params=list(DEMOS))
def demo(request, runs, tmp_path_factory, monkeypatch_module):
    return both(runs, request.param, request.param, DEMOS[request.param], tmp_path_factory, monkeypatch_module)


def test_the_run_succeeds_without_a_warning(demo):
    run = demo["nextflow"]
    assert run.returncode == 0, run.output[-3000:]
    assert not warnings(run), "\n".join(warnings(run))


def test_nextflow_publishes_exactly_what_enpact_run_writes(demo):
    ours = published(demo["enpact"]) - ENPACT_RUN_ONLY
    theirs = published(demo["nextflow"].outdir) - NEXTFLOW_ONLY
    assert theirs == ours, f"only Nextflow: {sorted(theirs - ours)}; only enpact run: {sorted(ours - theirs)}"
    compared = [name for name in sorted(ours) if name.startswith(BYTE_COMPARED) and not name.endswith(".png")]
    assert any(name.endswith(".db") for name in compared) and any(name.startswith("twas/") for name in compared)
    different = [name for name in compared
                 if (demo["enpact"] / name).read_bytes() != (demo["nextflow"].outdir / name).read_bytes()]
    assert not different, f"bytes differ between the engines: {different}"


def test_every_task_runs_the_configuration_enpact_run_uses(demo, tmp_path):
    problems = unmatched(demo["steps"], task_configs(demo["nextflow"], tmp_path))
    assert not problems, "\n".join(problems)


def test_resume_runs_no_task_and_changes_nothing(demo):
    before = {name: (demo["nextflow"].outdir / name).read_bytes() for name in published(demo["nextflow"].outdir)
              if not name.startswith(("pipeline_info/", "report/"))}
    again = nextflow(demo["base"] / "launch", "-profile", f"{demo['profile']},venv",
                     "-resume", outdir=demo["nextflow"].outdir)
    assert again.returncode == 0, again.output[-3000:]
    statuses = Counter(task["status"] for task in again.trace)
    assert set(statuses) == {"CACHED"}, statuses
    assert {name: (demo["nextflow"].outdir / name).read_bytes() for name in before} == before
    assert not warnings(again), "\n".join(warnings(again))


def test_a_changed_linearization_parameter_reruns_no_predictor_task(runs, tmp_path_factory, monkeypatch_module):
    """-resume --lin_maf 0.05 (published elsewhere): each task receives only its own step's options, so only the
    linearization tasks, those that read their outputs (database, TWAS, fine-mapping, report), and the checking task
    (it reads every parameter) run again;
    every PREDICT, PLAN and PERSONALIZE task is taken from the cache."""
    demo = both(runs, "test", "test", DEMOS["test"], tmp_path_factory, monkeypatch_module)
    again = nextflow(demo["base"] / "launch", "-profile", "test,venv", "-resume", "--lin_maf", "0.05",
                     outdir=demo["base"] / "lin_maf")
    assert again.returncode == 0, again.output[-3000:]
    reran = Counter(task["process"].split(":")[-1] for task in again.trace if task["status"] != "CACHED")
    assert reran == {"ENPACT_CHECK": 1, "ENPACT_LINEARIZE": 4, "ENPACT_DATABASE": 1, "ENPACT_TWAS": 1,
                     "ENPACT_FINEMAP": 1, "ENPACT_REPORT": 1}, reran
    assert json.loads((demo["base"] / "lin_maf" / "pipeline_info" / "params.json").read_text())["lin_maf"] == 0.05


def test_the_value_check_holds_for_nextflow_too(runs, tmp_path_factory, monkeypatch_module):
    import demo_values

    run = both(runs, "test", "test", DEMOS["test"], tmp_path_factory, monkeypatch_module)["nextflow"]
    problems = demo_values.compare(demo_values.read_expected(), demo_values.read_tables(run.outdir))
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    base = tmp_path_factory.mktemp("stub")
    return nextflow(base / "launch", "-profile", "test,venv", "-stub-run", outdir=base / "results")


CHUNK_NAME = re.compile(r"ENSGDEMO\d+\.\d+--ENSGDEMO\d+\.\d+|L\d+--L\d+")


def test_stub_run_publishes_the_whole_layout(stub, runs, tmp_path_factory, monkeypatch_module):
    """Every file `enpact run` writes, with stand-in chunk names (the stubs name two loci chunks L001--L050 and
    L051--L090, the demo has four)."""
    assert stub.returncode == 0, stub.output[-3000:]
    assert not warnings(stub), "\n".join(warnings(stub))
    real = both(runs, "test", "test", DEMOS["test"], tmp_path_factory, monkeypatch_module)
    layout = {CHUNK_NAME.sub("<chunk>", name) for name in published(stub.outdir) - NEXTFLOW_ONLY}
    assert layout == {CHUNK_NAME.sub("<chunk>", name) for name in published(real["enpact"]) - ENPACT_RUN_ONLY}


def test_an_unknown_parameter_stops_the_run_before_any_task(tmp_path):
    run = nextflow(tmp_path / "launch", "-profile", "test,venv", "-stub-run", "--binz", "4",
                   outdir=tmp_path / "results")
    assert run.returncode != 0 and "binz" in run.output
    assert not run.trace, "tasks ran"


def test_command_line_booleans_are_honoured(tmp_path):
    # `false` arrives as a string, which Groovy takes for true: honoured, it turns validation off (the unknown
    # parameter passes) and keeps the personalized stores
    run = nextflow(tmp_path / "launch", "-profile", "test,venv", "-stub-run", "--validate_params", "false",
                   "--binz", "4", outdir=tmp_path / "results")
    assert run.returncode == 0, run.output[-3000:]
    run = nextflow(tmp_path / "launch2", "-profile", "test,venv", "-stub-run", "--delete_personalized", "false",
                   outdir=tmp_path / "kept")
    assert run.returncode == 0, run.output[-3000:]
    assert list((tmp_path / "kept" / "personalized").glob("*.h5"))
    run = nextflow(tmp_path / "launch3", "-profile", "test,venv", "-stub-run", "--delete_personalized", "true",
                   outdir=tmp_path / "deleted")
    assert run.returncode == 0, run.output[-3000:]
    assert not [p for p in (tmp_path / "deleted").rglob("*") if p.is_file() and "personalized/" in str(p)]


def test_help_prints_the_parameters_and_exits(tmp_path):
    run = nextflow(tmp_path / "launch", "--help", outdir=tmp_path / "results", timeout=300)
    assert run.returncode == 0, run.output[-3000:]
    assert "--fasta" in run.output and "--lin_maf" in run.output
    assert not run.trace


TOWER_STANDIN = os.environ.get("ENPACT_TOWER_STANDIN") or shutil.which("turret")


@pytest.mark.skipif(not TOWER_STANDIN, reason="no Seqera Platform API stand-in: set ENPACT_TOWER_STANDIN to the `turret` "
                                              "command of the PyPI package nextflow-turret")
def test_seqera_platform_lists_every_report_tower_yml_names(tmp_path):
    """-with-tower against a Tower API stand-in on 127.0.0.1: every pattern of tower.yml names a published file
    (the plugin lists a report when a publish event matches; a whole published folder is one event and matches
    nothing inside it)."""
    import socket
    import time

    import yaml

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([TOWER_STANDIN, "--host", "127.0.0.1", "--port", str(port), "--db",
                               str(tmp_path / "turret.db")], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        run = nextflow(tmp_path / "launch", "-profile", "test,venv", "-stub-run", "-with-tower",
                       f"http://127.0.0.1:{port}", outdir=tmp_path / "results",
                       env={"TOWER_ACCESS_TOKEN": "enpact-test-token"})
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert run.returncode == 0, run.output[-3000:]
    reports = list((tmp_path / "launch").glob("nf-*-reports.tsv"))
    assert len(reports) == 1, run.output[-3000:]
    listed = {line.split("\t")[0] for line in reports[0].read_text().splitlines()[1:]}
    wanted = set(yaml.safe_load((ROOT / "tower.yml").read_text())["reports"])
    assert listed == wanted, f"never listed: {sorted(wanted - listed)}"
