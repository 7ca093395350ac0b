"""bin/enpact, the launcher Nextflow tasks find on PATH: which interpreter it runs, in and out of containers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "bin" / "enpact"


def fake_python(path: Path, marker: str, probe_ok: bool = True) -> Path:
    """An interpreter stand-in: `-c ...` (the import probe) exits quietly; `-m enpact ...` prints who ran."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/bash\n"
        f'if [ "$1" = -c ]; then exit {0 if probe_ok else 1}; fi\n'
        f'echo "{marker} $*"\n'
        'echo "PYTHONPATH=${PYTHONPATH:-}"\n'
    )
    path.chmod(0o755)
    return path


@pytest.fixture
def checkout(tmp_path):
    """A fake checkout: bin/enpact, a .venv python, and a system python3 first on PATH."""
    launcher = tmp_path / "bin" / "enpact"
    launcher.parent.mkdir()
    shutil.copy(LAUNCHER, launcher)
    launcher.chmod(0o755)
    fake_python(tmp_path / ".venv" / "bin" / "python", "venv")
    fake_python(tmp_path / "fakebin" / "python3", "system")
    return tmp_path


def launch(checkout: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": f"{checkout / 'fakebin'}:/usr/bin:/bin",
        "HOME": str(checkout),
        "ENPACT_CONTAINER_MARKERS": str(checkout / "no-such-marker"),
        **extra,
    }
    return subprocess.run([str(checkout / "bin" / "enpact"), "--version"], capture_output=True, text=True, env=env)


def ran(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0]


def test_outside_a_container_the_checkout_venv_runs(checkout):
    assert ran(launch(checkout)) == "venv -m enpact --version"


@pytest.mark.parametrize("variable", ["SINGULARITY_CONTAINER", "APPTAINER_CONTAINER"])
def test_inside_singularity_or_apptainer_the_image_python_runs(checkout, variable):
    assert ran(launch(checkout, **{variable: "/x.sif"})) == "system -m enpact --version"


def test_an_empty_container_variable_is_not_a_container(checkout):
    assert ran(launch(checkout, SINGULARITY_CONTAINER="")) == "venv -m enpact --version"


def test_a_container_marker_file_means_the_image_python_runs(checkout):
    marker = checkout / "dockerenv"
    marker.touch()
    result = launch(checkout, ENPACT_CONTAINER_MARKERS=f"{checkout / 'absent'} {marker}")
    assert ran(result) == "system -m enpact --version"


def test_enpact_python_wins_even_inside_a_container(checkout):
    chosen = fake_python(checkout / "elsewhere" / "python", "chosen")
    result = launch(checkout, ENPACT_PYTHON=str(chosen), APPTAINER_CONTAINER="/x.sif")
    assert ran(result) == "chosen -m enpact --version"


def test_enpact_venv_is_relative_to_the_checkout(checkout):
    fake_python(checkout / "other" / "bin" / "python", "other")
    assert ran(launch(checkout, ENPACT_VENV="other")) == "other -m enpact --version"


def test_without_a_venv_the_system_python_runs(checkout):
    shutil.rmtree(checkout / ".venv")
    assert ran(launch(checkout)) == "system -m enpact --version"


def test_require_venv_without_a_venv_fails_with_one_line(checkout):
    shutil.rmtree(checkout / ".venv")
    result = launch(checkout, ENPACT_REQUIRE_VENV="true")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert "make setup" in lines[0] and str(checkout / ".venv") in lines[0]


def test_require_venv_is_satisfied_by_the_venv_and_ignored_in_a_container(checkout):
    assert ran(launch(checkout, ENPACT_REQUIRE_VENV="true")) == "venv -m enpact --version"
    shutil.rmtree(checkout / ".venv")
    result = launch(checkout, ENPACT_REQUIRE_VENV="true", SINGULARITY_CONTAINER="/x.sif")
    assert ran(result) == "system -m enpact --version"


def test_require_venv_wins_over_marker_files_of_a_host_that_is_a_container(checkout):
    marker = checkout / "dockerenv"
    marker.touch()
    result = launch(checkout, ENPACT_REQUIRE_VENV="true", ENPACT_CONTAINER_MARKERS=str(marker))
    assert ran(result) == "venv -m enpact --version"
    # a venv whose interpreter cannot run here (a host's venv seen from inside a container) is passed over
    (checkout / ".venv" / "bin" / "python").write_text("#!/no/such/interpreter\n")
    assert ran(launch(checkout, ENPACT_REQUIRE_VENV="true", ENPACT_CONTAINER_MARKERS=str(marker))) \
        == "system -m enpact --version"


def test_an_interpreter_without_enpact_runs_it_from_the_checkout_src(checkout):
    shutil.rmtree(checkout / ".venv")
    fake_python(checkout / "fakebin" / "python3", "system", probe_ok=False)
    result = launch(checkout)
    assert ran(result) == "system -m enpact --version"
    assert result.stdout.splitlines()[1] == f"PYTHONPATH={checkout / 'src'}"


def test_an_interpreter_with_enpact_leaves_pythonpath_alone(checkout):
    assert launch(checkout).stdout.splitlines()[1] == "PYTHONPATH="


def test_bin_launcher_runs_the_cli_from_a_checkout():
    result = subprocess.run([str(LAUNCHER), "--version"], capture_output=True, text=True,
                            env={**os.environ, "ENPACT_PYTHON": sys.executable})
    assert result.returncode == 0 and result.stdout.startswith("enpact ")


def test_bin_launcher_picks_the_checkout_venv_for_real():
    venv = ROOT / os.environ.get("ENPACT_VENV", ".venv")
    if not os.access(venv / "bin" / "python", os.X_OK):
        pytest.skip(f"no virtual environment at {venv}")
    env = {k: v for k, v in os.environ.items()
           if k not in {"ENPACT_PYTHON", "APPTAINER_CONTAINER", "SINGULARITY_CONTAINER"}}
    env.update(ENPACT_REQUIRE_VENV="true", ENPACT_CONTAINER_MARKERS=str(ROOT / "no-such-marker"))
    result = subprocess.run([str(LAUNCHER), "--version"], capture_output=True, text=True, env=env)
    assert result.returncode == 0 and result.stdout.startswith("enpact "), result.stderr
