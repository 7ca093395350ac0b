"""scripts/setup.sh and the Makefile entry points, without installing anything.

setup.sh runs against stand-ins: interpreters that are this test's Python with a shadow sitecustomize (an old
sys.version_info) or a shadow `ensurepip`/`pip` that cannot be imported, a venv python whose `-m pip install`
only records its arguments, and `id`/`apt-get` stand-ins first on PATH (root or not; apt-get records what it
would install). Each run takes well under a second.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "scripts" / "setup.sh"
REAL_PYTHON = sys.executable
VENV_PACKAGE = re.compile(r"python3(\.\d+)?-venv")


def write_exe(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


class Sandbox:
    """Stand-in commands, logs and an environment for running setup.sh."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.bin = tmp / "fakebin"
        self.venv = tmp / "venv"
        self.apt_log = tmp / "apt.log"
        self.pip_log = tmp / "pip.log"
        self.venv_log = tmp / "venv.log"
        write_exe(self.bin / "id",
                  '#!/bin/sh\nif [ "$1" = -u ]; then echo "${FAKE_UID:-1000}"; else exec /usr/bin/id "$@"; fi\n')
        write_exe(self.bin / "apt-get", '#!/bin/sh\necho "apt-get $*" >> "$APT_LOG"\n')

    def python(self, name: str, version: tuple[int, int, int] | None = None, no_import: tuple[str, ...] = (),
               on_venv: str | None = None) -> Path:
        """This test's Python, reporting `version`, unable to import `no_import`; `on_venv`: shell code run for
        `-m venv ...` instead of creating one."""
        shadow = self.tmp / f"{name}-lib"
        shadow.mkdir(parents=True)
        if version:
            (shadow / "sitecustomize.py").write_text(f"import sys\nsys.version_info = {(*version, 'final', 0)!r}\n")
        for module in no_import:
            (shadow / f"{module}.py").write_text(f"raise ImportError('no {module} here')\n")
        venv_hook = f'if [ "$1" = -m ] && [ "$2" = venv ]; then {on_venv}; fi\n' if on_venv else ""
        return write_exe(self.tmp / name, f'#!/bin/sh\n{venv_hook}PYTHONPATH="{shadow}" exec "{REAL_PYTHON}" "$@"\n')

    def fake_venv(self, python: bool = True) -> None:
        """A venv whose python is this test's Python except that `-m pip install ...` is only recorded (and
        makes `import torch` succeed when it names torch)."""
        (self.venv / "bin").mkdir(parents=True, exist_ok=True)
        (self.venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
        write_exe(self.venv / "bin" / "enpact", "#!/bin/sh\necho enpact\n")
        if python:
            torch = self.tmp / "torch-installed"
            write_exe(self.venv / "bin" / "python", f"""#!/bin/sh
if [ "$1" = -m ] && [ "$2" = pip ] && [ "$3" = install ]; then
    echo "$*" >> "{self.pip_log}"
    case "$*" in *torch==*) touch "{torch}";; esac
    exit 0
fi
if [ "$1" = -c ] && [ "$2" = "import torch" ]; then [ -f "{torch}" ]; exit $?; fi
exec "{REAL_PYTHON}" "$@"
""")

    def run(self, *args: str, path: str | None = None, **env: str) -> subprocess.CompletedProcess:
        environment = {
            "PATH": path if path is not None else f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.tmp),
            "ENPACT_VENV": str(self.venv),
            "APT_LOG": str(self.apt_log),
            **env,
        }
        return subprocess.run(["/bin/bash", str(SETUP), *args], capture_output=True, text=True, env=environment,
                              timeout=60)

    def log(self, path: Path) -> list[str]:
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def box(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("setup: ")
    return lines[0]


# --- the interpreter the venv is made from -------------------------------------------------------------------

def test_python_older_than_3_10_is_one_line_and_nothing_is_installed(box):
    old = box.python("python3.8", version=(3, 8, 10))
    line = one_line_error(box.run(PYTHON=str(old), FAKE_UID="0"))
    assert ">= 3.10" in line and "3.8.10" in line and "PYTHON=" in line
    assert box.log(box.apt_log) == [] and not box.venv.exists()


def test_python_3_10_is_accepted(box):
    """3.10 passes the version check; the stand-in then refuses to create the venv."""
    py = box.python("python3.10", version=(3, 10, 0), on_venv='echo "$*" >> "$VENV_LOG"; exit 3')
    result = box.run(PYTHON=str(py), VENV_LOG=str(box.venv_log))
    assert result.returncode == 3
    assert f"creating virtual environment {box.venv} with {py} (3.10.0)" in result.stderr
    assert box.log(box.venv_log) == [f"-m venv {box.venv}"]


def test_python_without_venv_module_not_root_names_the_package(box):
    py = box.python("python3", no_import=("ensurepip",))
    line = one_line_error(box.run(PYTHON=str(py)))
    assert "no venv module" in line and "please install" in line
    assert VENV_PACKAGE.search(line) and re.search(r"sudo apt-get install python3(\.\d+)?-venv", line)
    assert box.log(box.apt_log) == []


def test_python_without_venv_module_as_root_installs_the_package(box):
    py = box.python("python3", no_import=("ensurepip",))
    result = box.run(PYTHON=str(py), FAKE_UID="0")
    apt = box.log(box.apt_log)
    assert apt[0] == "apt-get update -qq"
    assert apt[1].startswith("apt-get install -y") and VENV_PACKAGE.fullmatch(apt[1].split()[-1])
    # the stand-in apt-get installed nothing: the check after it fails in one line
    assert result.returncode != 0 and "still has no venv module" in result.stderr.splitlines()[-1]


@pytest.mark.skipif(not os.access("/usr/bin/python3", os.X_OK), reason="no /usr/bin/python3 to compare with")
def test_venv_package_of_a_python_other_than_debians_default(box):
    default = subprocess.run(["/usr/bin/python3", "-c", "import sys; print(sys.version_info[1])"],
                             capture_output=True, text=True).stdout.strip()
    other = 99 if default != "99" else 98
    py = box.python("python3.x", version=(3, other, 0), no_import=("ensurepip",))
    assert f"python3.{other}-venv" in one_line_error(box.run(PYTHON=str(py)))


def test_missing_python_is_one_line(box):
    line = one_line_error(box.run(PYTHON=str(box.tmp / "no-such-python")))
    assert "not found" in line


def test_no_python3_at_all_names_python3_and_python3_venv(box):
    """A minimal Debian without python3: named (not root), or installed with apt-get (root)."""
    os.symlink(shutil.which("dirname"), box.bin / "dirname")
    line = one_line_error(box.run(path=str(box.bin)))
    assert "python3 not found" in line and "python3 python3-venv" in line
    result = box.run(path=str(box.bin), FAKE_UID="0")
    assert box.log(box.apt_log)[-1].endswith("--no-install-recommends python3 python3-venv")
    assert result.returncode != 0 and "still not found" in result.stderr


def test_a_venv_left_without_pip_is_recreated(box):
    """`python3 -m venv` without ensurepip fails half-way and leaves a venv without pip: re-created."""
    box.fake_venv(python=False)
    box.python("venv/bin/python", no_import=("pip",))
    py = box.python("python3", on_venv='echo "$*" >> "$VENV_LOG"; exit 3')
    result = box.run(PYTHON=str(py), VENV_LOG=str(box.venv_log))
    assert result.returncode != 0 and "re-creating virtual environment" in result.stderr
    assert box.log(box.venv_log) == [f"-m venv --clear {box.venv}"]


# --- installing, and what it says ------------------------------------------------------------------------------

def test_install_says_what_each_long_step_is_and_how_long_it_took(box):
    box.fake_venv()
    result = box.run(TORCH_SPEC="torch==9.9.9")
    assert result.returncode == 0, result.stderr
    err = result.stderr
    torch_line = next(line for line in err.splitlines() if line.startswith("setup: installing torch==9.9.9"))
    assert "~190 MB" in torch_line and "15-40 s" in torch_line
    assert "CUDA" in torch_line and "--index-url https://download.pytorch.org/whl/cpu" in torch_line
    assert re.search(r"setup: torch installed in \d+s", err)
    assert re.search(r"setup: installing \d+ pinned packages of requirements.txt \(~250 MB.*40-60 s", err)
    assert re.search(r"setup: packages installed in \d+s", err)
    pip = box.log(box.pip_log)
    # torch: pip's own output with a progress bar (not --quiet); the rest quietly
    assert "--progress-bar on" in pip[0] and "--quiet" not in pip[0] and pip[0].endswith("torch==9.9.9")
    assert "--quiet -r requirements.txt" in pip[1]
    assert all("--quiet" in line for line in pip[1:])
    assert not any("requirements-test.txt" in line for line in pip)  # runtime only


def test_cpu_index_spec_gets_no_cuda_warning(box):
    box.fake_venv()
    spec = "torch==9.9.9 --index-url https://download.pytorch.org/whl/cpu"
    result = box.run(TORCH_SPEC=spec)
    assert result.returncode == 0, result.stderr
    torch_line = next(line for line in result.stderr.splitlines() if "installing torch==9.9.9" in line)
    assert "CUDA" not in torch_line
    assert box.log(box.pip_log)[0].endswith(spec)


def test_after_installing_it_says_how_to_put_enpact_on_path(box):
    box.fake_venv()
    result = box.run()
    assert result.returncode == 0, result.stderr
    bin_dir = box.venv / "bin"
    err = result.stderr
    assert f"setup: ready: {bin_dir}/enpact" in err
    assert f"source {bin_dir}/activate" in err
    assert f'export PATH="{bin_dir}:$PATH"' in err
    assert "make run PARAMS=params.yaml" in err
    # the PATH line works as printed
    line = next(l for l in err.splitlines() if "export PATH=" in l)
    export = line[line.index("export PATH="):]
    shell = subprocess.run(["/bin/bash", "-c", f"{export}; command -v enpact"], capture_output=True, text=True,
                           env={"PATH": "/usr/bin:/bin"})
    assert shell.stdout.strip() == f"{bin_dir}/enpact"


def test_second_run_is_up_to_date_and_installs_nothing(box):
    box.fake_venv()
    assert box.run().returncode == 0
    installs = len(box.log(box.pip_log))
    again = box.run()
    assert again.returncode == 0, again.stderr
    assert "environment up to date" in again.stderr and "installing" not in again.stderr
    assert len(box.log(box.pip_log)) == installs
    hint = [l for l in again.stderr.splitlines() if "activate" in l]
    assert len(hint) == 1 and "make run PARAMS=params.yaml" in hint[0]  # one line when nothing was installed


def test_dev_setup_counts_as_runtime_setup_but_not_the_reverse(box):
    for tool in ("bcftools", "tabix", "samtools", "Rscript", "java", "npm"):  # the --dev system packages
        write_exe(box.bin / tool, "#!/bin/sh\nexit 0\n")
    box.fake_venv()
    assert box.run().returncode == 0
    assert not any("requirements-test.txt" in line for line in box.log(box.pip_log))
    box.run("--dev")  # (its last step, fetch-groovy.sh, may fail with the stand-in npm: the pip steps ran)
    assert any("requirements-test.txt" in line for line in box.log(box.pip_log))
    installs = len(box.log(box.pip_log))
    runtime = box.run()
    assert runtime.returncode == 0, runtime.stderr
    assert "environment up to date" in runtime.stderr and len(box.log(box.pip_log)) == installs


def test_a_changed_torch_spec_reinstalls(box):
    box.fake_venv()
    assert box.run(TORCH_SPEC="torch==9.9.9").returncode == 0
    result = box.run(TORCH_SPEC="torch==9.9.8")
    assert "environment up to date" not in result.stderr and "installing" in result.stderr


def test_no_hint_when_enpact_is_already_on_path(box):
    box.fake_venv()
    result = box.run(path=f"{box.venv / 'bin'}:{box.bin}:/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    assert "activate" not in result.stderr and "ready:" in result.stderr


# --- the Makefile -----------------------------------------------------------------------------------------------

make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def run_make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args], capture_output=True, text=True,
                          timeout=60)


@make
def test_make_run_passes_the_parameter_file_to_enpact_run():
    result = run_make("-n", "run", "PARAMS=my params.yaml", "VENV=/opt/v", "ARGS=--no-progress")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "bash scripts/setup.sh" in lines
    assert '/opt/v/bin/enpact run --params "my params.yaml" --no-progress' in lines


@make
def test_make_run_without_params_is_a_usage_line_before_any_setup():
    result = run_make("run")
    assert result.returncode != 0
    assert "usage: make run PARAMS=params.yaml" in result.stderr
    assert "setup:" not in result.stderr + result.stdout


@make
def test_existing_make_targets_still_resolve():
    for target in ("demo", "test", "setup", "setup-dev", "images", "benchmarks-quick", "demo-data", "clean", "run"):
        extra = ["PARAMS=p.yaml"] if target == "run" else []
        result = run_make("-n", target, *extra)
        assert result.returncode == 0, (target, result.stderr)
    demo = run_make("-n", "demo").stdout
    assert "bash scripts/setup.sh" in demo and ".venv/bin/enpact run" in demo and "activate" in demo
