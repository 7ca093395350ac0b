"""The real pipeline: `nextflow run` against `enpact run` on the bundled demo, where a Nextflow executable is at hand
(ENPACT_NEXTFLOW=/path/to/nextflow, or `nextflow` on PATH, with the nf-schema plugin reachable). Without one every
test here is skipped with the reason in pytest's summary; the static checks (test_nextflow_static.py, the contract
and parity tests) run everywhere.

What is checked, on one machine:
- both test profiles publish exactly the files `enpact run` writes (engine bookkeeping apart), and the databases,
  covariances, summaries, accuracy and TWAS tables, loci and model files byte for byte;
- every task's `enpact` command line, read from the run's work directories, is the configuration `enpact run` hands
  the same step (the parity the static test checks on rendered scripts, here from the real DAG);
- `-resume` runs no task; `-stub-run` publishes the whole layout; a run prints no warning;
- parameters mean what they mean to `enpact run`: an unknown one stops the run before any task, command-line
  booleans are honoured (`--delete_personalized false`, `--validate_params false`), `--help` exits.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "nextflow"))

from test_nextflow_contract import enpact_commands  # noqa: E402
from test_nextflow_parity import ENGINE_DIFFERENCES, comparable, step_config  # noqa: E402

from enpact.params import demo_params  # noqa: E402

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
# published files whose bytes hold a time or a path: compared by name only
NOT_BYTE_COMPARED = ("report/", "pipeline_info/", ".png")
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


def nextflow(launch: Path, *args: str, outdir: Path, timeout: int = 1800) -> NextflowRun:
    """Run the pipeline from a launch folder (work/ and .nextflow/ stay there), the trace with work directories."""
    launch.mkdir(parents=True, exist_ok=True)
    config = launch / "trace.config"
    config.write_text(TRACE_CONFIG)
    env = {**os.environ, "NXF_ANSI_LOG": "false"}
    command = [NEXTFLOW, "run", str(ROOT), "-ansi-log", "false", "-c", str(config), "--outdir", str(outdir), *args]
    proc = subprocess.run(command, cwd=launch, capture_output=True, text=True, timeout=timeout, env=env)
    trace_file = outdir / "pipeline_info" / "execution_trace.txt"
    trace = []
    if trace_file.exists():
        lines = trace_file.read_text().splitlines()
        header = lines[0].split("\t")
        trace = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
    return NextflowRun(proc.returncode, proc.stdout + proc.stderr, outdir, trace)


def enpact_run(params: dict, outdir: Path, monkeypatch) -> list[tuple[str, object]]:
    """`enpact run` in process; (step key, configuration) of every step it ran."""
    from enpact import runner as runner_module

    recorded = []
    original = runner_module.Runner.step

    def record(self, group, key, config, outputs):
        recorded.append((key, config))
        return original(self, group, key, config, outputs)

    monkeypatch.setattr(runner_module.Runner, "step", record)
    runner_module.run_pipeline({**params, "outdir": str(outdir)}, progress=False)
    return recorded


def published(outdir: Path) -> set[str]:
    """Every file under a results folder, relative to it."""
    return {str(p.relative_to(outdir)) for p in outdir.rglob("*") if p.is_file()}


def task_configs(run: NextflowRun) -> list[tuple[str, object]]:
    """(process, configuration) of every task: its `enpact` command line (.command.sh) as the CLI reads it."""
    configs = []
    for task in run.trace:
        commands = enpact_commands((Path(task["workdir"]) / ".command.sh").read_text())
        assert len(commands) == 1, f"{task['name']}: {commands}"
        configs.append((task["process"], step_config(shlex.split(commands[0])[1:])))
    return configs


def unmatched(runner: list[tuple[str, object]], tasks: list[tuple[str, object]]) -> list[str]:
    """Configurations one engine runs and the other does not (file fields by name; ENGINE_DIFFERENCES apart)."""
    def key(config: object) -> str:
        step, values = comparable(config)
        return repr((step, sorted((k, repr(v)) for k, v in values.items() if (step, k) not in ENGINE_DIFFERENCES)))

    ours = Counter(key(config) for _key, config in runner)
    theirs = Counter(key(config) for process, config in tasks if process != "ENPACT_CHECK")
    return ([f"only enpact run: {k}" for k in (ours - theirs)] +
            [f"only Nextflow: {k}" for k in (theirs - ours)])


def warnings(run: NextflowRun) -> list[str]:
    return [line for line in run.output.splitlines() if "WARN" in line]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The demo with both engines (module scope: each run takes minutes)."""
    return {}


def both(runs: dict, name: str, profile: str, params: dict, tmp_path_factory, monkeypatch_module) -> dict:
    if name not in runs:
        base = tmp_path_factory.mktemp(name)
        steps = enpact_run(params, base / "enpact", monkeypatch_module)
        run = nextflow(base / "launch", "-profile", f"{profile},venv", outdir=base / "nextflow")
        runs[name] = {"base": base, "profile": profile, "steps": steps, "enpact": base / "enpact", "nextflow": run}
    return runs[name]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


DEMOS = {"test": demo_params(), "test_contexts": demo_params("contexts")}


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
    different = [name for name in sorted(ours) if not any(part in name for part in NOT_BYTE_COMPARED)
                 and (demo["enpact"] / name).read_bytes() != (demo["nextflow"].outdir / name).read_bytes()]
    assert not different, f"bytes differ between the engines: {different}"


def test_every_task_runs_the_configuration_enpact_run_uses(demo):
    problems = unmatched(demo["steps"], task_configs(demo["nextflow"]))
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


def test_the_value_check_holds_for_nextflow_too(runs, tmp_path_factory, monkeypatch_module):
    import demo_values

    run = both(runs, "test", "test", DEMOS["test"], tmp_path_factory, monkeypatch_module)["nextflow"]
    problems = demo_values.compare(demo_values.read_expected(), demo_values.read_tables(run.outdir))
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    base = tmp_path_factory.mktemp("stub")
    return nextflow(base / "launch", "-profile", "test,venv", "-stub-run", outdir=base / "results")


def test_stub_run_publishes_the_whole_layout(stub, runs, tmp_path_factory, monkeypatch_module):
    assert stub.returncode == 0, stub.output[-3000:]
    assert not warnings(stub), "\n".join(warnings(stub))
    real = both(runs, "test", "test", DEMOS["test"], tmp_path_factory, monkeypatch_module)
    assert published(stub.outdir) - NEXTFLOW_ONLY == published(real["enpact"]) - ENPACT_RUN_ONLY


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
    assert run.returncode == 0 and not (tmp_path / "deleted" / "personalized").exists()


def test_help_prints_the_parameters_and_exits(tmp_path):
    run = nextflow(tmp_path / "launch", "--help", outdir=tmp_path / "results", timeout=300)
    assert run.returncode == 0, run.output[-3000:]
    assert "--fasta" in run.output and "--lin_maf" in run.output
    assert not run.trace
