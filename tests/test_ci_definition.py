"""Static checks of the GitHub Actions workflow, .github/workflows/ci.yml.

The workflow cannot run on the project's build machines (no internet, no Docker, no Nextflow), so this file is
what keeps it correct: `problems()` reads the parsed workflow and checks it against the repository (the README's
test command and .ci/run, the Nextflow version floor of nextflow.config, the profiles and Makefile targets the
jobs use, the system packages of scripts/setup.sh, the Dockerfiles, pinned actions, paths that exist). The tests
run it on the real file (no problems) and on mutated copies (each check must be able to fail). Two steps whose
logic matters most (the lint gate on warnings and the release version check) are also executed with stand-ins.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
REQUIRED_JOBS = ("lint", "pytest", "nf-test", "images")
NEXTFLOW_JOBS = ("lint", "nf-test")  # jobs that install Nextflow, with a matrix over NXF_VER
LATEST = "latest-stable"
NF_TEST_MIN = (0, 9, 4)  # strict-syntax support (askimed/nf-test#336); Nextflow >= 26.04 parses strictly by default
PYTHON_VERSION = "3.11"
PINNED_USES = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
# repository paths named in run: steps (a simple regex over the folders of this repository, and top-level files)
REPO_PATH = re.compile(
    r"(?<![\w.$/-])((?:\.ci|\.github|bin|conf|containers|docs|modules|scripts|src|subworkflows|tests|workflows)"
    r"/[\w.*/-]*[\w*])")
REPO_FILE = re.compile(
    r"(?<![\w./$-])(nextflow\.config|nf-test\.config|pyproject\.toml|requirements[\w-]*\.txt|Makefile|main\.nf"
    r"|README\.md)(?![\w-])")


# --------------------------------------------------------------------------------------------------------------
# reading the workflow and the repository
# --------------------------------------------------------------------------------------------------------------

def load_workflow(path: Path = WORKFLOW) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict | None:
    """The `on:` block. YAML 1.1 reads the bare key `on` as the boolean True."""
    value = workflow.get("on", workflow.get(True))
    return value if isinstance(value, dict) else None


def as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def steps_of(job: dict) -> list[dict]:
    return [s for s in job.get("steps") or [] if isinstance(s, dict)]


def run_of(step: dict) -> str:
    return str(step.get("run") or "")


def uses_of(step: dict) -> str:
    return str(step.get("uses") or "")


def action(step: dict) -> str:
    """`owner/name` of a step's action, without the version."""
    return uses_of(step).split("@", 1)[0]


def command_lines(script: str) -> list[str]:
    """The lines of a run: script that are not blank or shell comments."""
    return [line.strip() for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]


def step_env(workflow: dict, job: dict, step: dict) -> dict:
    """The environment a step sees: workflow env, then job env, then step env."""
    env: dict = {}
    for scope in (workflow, job, step):
        env.update(scope.get("env") or {})
    return env


def first_index(steps: list[dict], predicate) -> int | None:
    return next((i for i, step in enumerate(steps) if predicate(step)), None)


def version_tuple(text: str) -> tuple[int, ...] | None:
    """'26.04.0' -> (26, 4, 0); '26.05.0-edge' -> (26, 5, 0); anything else -> None."""
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:-edge)?", text.strip())
    return tuple(int(g) for g in match.groups()) if match else None


def version_floor(config_text: str) -> str | None:
    """The lowest supported Nextflow version, from manifest.nextflowVersion = '!>=26.04.0' in nextflow.config."""
    match = re.search(r"""^\s*nextflowVersion\s*=\s*['"]!?\s*>=\s*(\d+\.\d+\.\d+)['"]""", config_text, re.M)
    return match.group(1) if match else None


def config_block(text: str, name: str) -> str | None:
    """The body of the top-level block `name { ... }` of a Nextflow config (braces counted, comments ignored)."""
    match = re.search(rf"^{re.escape(name)}\s*\{{", text, re.M)
    if not match:
        return None
    depth, start = 1, match.end()
    i = start
    while i < len(text) and depth:
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
            continue
        if text[i] in "'\"":
            end = text.find(text[i], i + 1)
            i = len(text) if end < 0 else end + 1
            continue
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[start:i - 1]


def config_profiles(config_text: str) -> set[str]:
    """Names of the profiles defined in the `profiles { ... }` block (one level deep)."""
    body = config_block(config_text, "profiles")
    if body is None:
        return set()
    names, depth = set(), 0
    for line in body.splitlines():
        code = line.split("//", 1)[0]
        if depth == 0:
            match = re.match(r"^\s*([A-Za-z_][\w-]*)\s*\{", code)
            if match:
                names.add(match.group(1))
        depth += code.count("{") - code.count("}")
    return names


def makefile_targets(text: str) -> set[str]:
    targets = set()
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+(?:\s+[A-Za-z0-9_.-]+)*)\s*:(?!=)", line)
        if match and not line.startswith("."):
            targets.update(match.group(1).split())
    return targets


def setup_apt_packages(setup_text: str) -> list[str]:
    """The Debian packages scripts/setup.sh --dev installs: the `"check=package"` pairs passed to apt_install."""
    packages = []
    for call in re.findall(r"^\s*apt_install\s+((?:.*\\\n)*.*)$", setup_text, re.M):
        packages += [pair.split("=", 1)[1] for pair in re.findall(r'"([^"]*=[^"]*)"', call)]
    return packages


def setup_torch_pin(setup_text: str) -> str | None:
    """The default torch requirement of scripts/setup.sh (TORCH_SPEC:-torch==X)."""
    match = re.search(r"TORCH_SPEC:-(torch==[\w.+]+)", setup_text)
    return match.group(1) if match else None


def readme_test_command(readme_text: str) -> str | None:
    """The test command of the README: the `make test` line of a fenced code block."""
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", readme_text, re.M | re.S):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if re.fullmatch(r"make\s+test", command):
                return command
    return None


def nf_test_files(root: Path) -> dict[str, set[str]]:
    """Every *.nf.test of the repository (as nf-test.config finds them) -> its tags."""
    skip = {".venv", ".nf-test", "work", "results", ".git", ".cache", "node_modules"}
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        for name in sorted(f for f in files if f.endswith(".nf.test")):
            path = Path(folder) / name
            tags = set(re.findall(r"""^\s*tag\s+['"]([^'"]+)['"]""", path.read_text(), re.M))
            found[str(path.relative_to(root))] = tags
    return found


def profile_option(command: str) -> list[str] | None:
    """The profiles of `nf-test test --profile=+a,b` (or `--profile a,b`), without the leading '+'."""
    match = re.search(r"--profile(?:=|\s+)(\S+)", command)
    if not match:
        return None
    return [p for p in match.group(1).strip("'\"").lstrip("+").split(",") if p]


def tag_options(command: str) -> list[str]:
    return re.findall(r"--tags?(?:=|\s+)(\$\{\{[^}]*\}\}|\S+)", command)


# --------------------------------------------------------------------------------------------------------------
# the checks
# --------------------------------------------------------------------------------------------------------------

def problems(workflow: dict, root: Path = ROOT) -> list[str]:
    """Everything wrong with the workflow, one line each; [] when it is consistent with the repository."""
    out: list[str] = []
    if not isinstance(workflow, dict):
        return ["the workflow is not a YAML mapping"]
    jobs = workflow.get("jobs") if isinstance(workflow.get("jobs"), dict) else {}

    # triggers, permissions, concurrency
    on = triggers(workflow)
    if on is None:
        out.append("no `on:` triggers")
        on = {}
    push = on.get("push") if isinstance(on.get("push"), dict) else {}
    if "main" not in as_list(push.get("branches")):
        out.append("on.push.branches must include main")
    if "v*" not in as_list(push.get("tags")):
        out.append("on.push.tags must include 'v*' (release tags)")
    if "pull_request" not in on:
        out.append("on: must include pull_request")
    if workflow.get("permissions") != {"contents": "read"}:
        out.append("top-level permissions must be exactly `contents: read`")
    concurrency = workflow.get("concurrency")
    if not (isinstance(concurrency, dict) and concurrency.get("group") and concurrency.get("cancel-in-progress")):
        out.append("concurrency with a group and cancel-in-progress is missing (superseded runs are not cancelled)")

    for name in REQUIRED_JOBS:
        if not isinstance(jobs.get(name), dict):
            out.append(f"job {name} is missing")

    out += _uses_problems(jobs)
    out += _path_problems(jobs, root)
    out += _python_problems(jobs)
    out += _nextflow_version_problems(workflow, jobs, root)
    if isinstance(jobs.get("lint"), dict):
        out += _lint_problems(jobs["lint"])
    if isinstance(jobs.get("pytest"), dict):
        out += _pytest_problems(workflow, jobs["pytest"], root)
    if isinstance(jobs.get("nf-test"), dict):
        out += _nf_test_problems(workflow, jobs["nf-test"], root)
    if isinstance(jobs.get("images"), dict):
        out += _images_problems(jobs["images"], root)
    return out


def _uses_problems(jobs: dict) -> list[str]:
    out = []
    for name, job in jobs.items():
        if not isinstance(job, dict):
            continue
        used = [job["uses"]] if job.get("uses") else []
        used += [uses_of(s) for s in steps_of(job) if s.get("uses")]
        for uses in used:
            if uses.startswith(("./", "docker://")):
                continue
            if not PINNED_USES.match(str(uses)):
                out.append(f"job {name}: `uses: {uses}` is not pinned to a version (@vN or a commit sha)")
    return out


def _path_problems(jobs: dict, root: Path) -> list[str]:
    out = []
    targets = makefile_targets((root / "Makefile").read_text()) if (root / "Makefile").is_file() else set()
    for name, job in jobs.items():
        if not isinstance(job, dict):
            continue
        for step in steps_of(job):
            texts = [run_of(step)]
            with_ = step.get("with") or {}
            texts += [str(with_[k]) for k in ("file", "cache-dependency-path") if with_.get(k)]
            for text in texts:
                for path in REPO_PATH.findall(text) + REPO_FILE.findall(text):
                    if not any(root.glob(path)) and not (root / path).exists():
                        out.append(f"job {name}: `{path}` does not exist in the repository")
            for line in command_lines(run_of(step)):
                for target in re.findall(r"(?:^|[;&|(]\s*)make\s+([A-Za-z][\w-]*)", line):
                    if target not in targets:
                        out.append(f"job {name}: `make {target}`: the Makefile has no target {target}")
    return out


def _python_problems(jobs: dict) -> list[str]:
    out = []
    for name, job in jobs.items():
        if not isinstance(job, dict):
            continue
        for step in steps_of(job):
            if action(step) == "actions/setup-python":
                version = (step.get("with") or {}).get("python-version")
                # unquoted, YAML reads 3.10 as the float 3.1
                if not isinstance(version, str) or version != PYTHON_VERSION:
                    out.append(f"job {name}: setup-python must install python-version '{PYTHON_VERSION}' "
                               f"(a quoted string), not {version!r}")
    return out


def _nextflow_version_problems(workflow: dict, jobs: dict, root: Path) -> list[str]:
    out = []
    config = root / "nextflow.config"
    floor = version_floor(config.read_text()) if config.is_file() else None
    if floor is None:
        return ["no `nextflowVersion = '!>=X.Y.Z'` in nextflow.config's manifest: the version floor is unknown"]
    floor_t = version_tuple(floor)

    def check_value(where: str, value) -> None:
        if not isinstance(value, str):
            out.append(f"{where}: NXF_VER {value!r} must be a quoted string (YAML reads 26.10 as a number)")
        elif value != LATEST and (version_tuple(value) is None or version_tuple(value) < floor_t):
            out.append(f"{where}: NXF_VER {value} is neither '{LATEST}' nor >= the floor {floor} of nextflow.config")

    # every env NXF_VER: the launcher accepts a version number (or nothing), not the alias
    scopes = [("workflow env", workflow)]
    for name, job in jobs.items():
        if isinstance(job, dict):
            scopes.append((f"job {name} env", job))
            scopes += [(f"job {name} step env", s) for s in steps_of(job)]
    for where, scope in scopes:
        value = (scope.get("env") or {}).get("NXF_VER")
        if value is None:
            continue
        if isinstance(value, str) and "${{" in value:
            if "matrix.NXF_VER" in value and LATEST not in value:
                out.append(f"{where}: NXF_VER = {value} passes '{LATEST}' to the nextflow launcher, which only "
                           "accepts version numbers")
        elif value == LATEST:
            out.append(f"{where}: NXF_VER = {LATEST}: the nextflow launcher only accepts version numbers")
        else:
            check_value(where, value)

    for name, job in jobs.items():
        if not isinstance(job, dict):
            continue
        matrix = (job.get("strategy") or {}).get("matrix") or {}
        values = as_list(matrix.get("NXF_VER")) if isinstance(matrix, dict) else []
        for value in values:
            check_value(f"job {name} matrix", value)
        steps = steps_of(job)
        for step in steps:
            if action(step) == "nf-core/setup-nextflow":
                version = (step.get("with") or {}).get("version")
                if version is None:
                    out.append(f"job {name}: setup-nextflow without `version:` installs whatever is newest")
                elif not (isinstance(version, str) and "matrix.NXF_VER" in version):
                    check_value(f"job {name} setup-nextflow", version)
        if name not in NEXTFLOW_JOBS:
            continue
        if floor not in values:
            out.append(f"job {name}: matrix NXF_VER {values} must include the floor {floor} of nextflow.config")
        if LATEST not in values:
            out.append(f"job {name}: matrix NXF_VER {values} must include '{LATEST}'")
        installs = [s for s in steps if action(s) == "nf-core/setup-nextflow" or "get.nextflow.io" in run_of(s)]
        if not installs:
            out.append(f"job {name}: Nextflow is not installed (nf-core/setup-nextflow or get.nextflow.io)")
        elif values:
            for step in installs:
                # setup-nextflow installs its `version:`; the official installer installs env NXF_VER
                version = (step.get("with") or {}).get("version") if action(step) == "nf-core/setup-nextflow" \
                    else str(step_env(workflow, job, step).get("NXF_VER")) + run_of(step)
                if "matrix.NXF_VER" not in str(version):
                    out.append(f"job {name}: the Nextflow install does not use matrix.NXF_VER")
        java = first_index(steps, lambda s: action(s) == "actions/setup-java"
                           and str((s.get("with") or {}).get("java-version")) == "17"
                           and (s.get("with") or {}).get("distribution") == "temurin")
        if java is None:
            out.append(f"job {name}: actions/setup-java with java-version 17 and distribution temurin is missing")
        elif installs and java > steps.index(installs[0]):
            out.append(f"job {name}: Java must be set up before Nextflow is installed")
    return out


def _lint_problems(job: dict) -> list[str]:
    lint_steps = [s for s in steps_of(job) if re.search(r"\bnextflow\s+lint\b", run_of(s))]
    if not lint_steps:
        return ["job lint does not run `nextflow lint`"]
    out = []
    if not any(re.search(r"\bnextflow\s+lint\b[^\n]*\s\.(\s|$)", run_of(s), re.M) for s in lint_steps):
        out.append("job lint: `nextflow lint` must check the whole repository (`nextflow lint ... .`)")
    if not any("warnings" in run_of(s) for s in lint_steps):
        out.append("job lint: nothing fails on lint warnings (nextflow lint exits non-zero on errors only)")
    return out


def _pytest_problems(workflow: dict, job: dict, root: Path) -> list[str]:
    out = []
    steps = steps_of(job)
    if job.get("runs-on") != "ubuntu-latest":
        out.append("job pytest must run on ubuntu-latest")
    exact = [i for i, s in enumerate(steps) if run_of(s).strip() == "bash .ci/run"]
    near = [s for s in steps if "ci/run" in run_of(s) and run_of(s).strip() != "bash .ci/run"]
    if len(exact) != 1 or near:
        out.append("job pytest must have exactly one step whose run is `bash .ci/run` (as the normal user)")

    # .ci/run is the README's test command
    readme = root / "README.md"
    ci_run = root / ".ci" / "run"
    command = readme_test_command(readme.read_text()) if readme.is_file() else None
    if command is None:
        out.append("README.md has no `make test` command in a code block")
    elif not ci_run.is_file() or command not in command_lines(ci_run.read_text()):
        out.append(f".ci/run does not run the README's test command `{command}`")

    setup = root / "scripts" / "setup.sh"
    setup_text = setup.read_text() if setup.is_file() else ""
    if exact:
        run_step = steps[exact[0]]
        # torch from the CPU index, at the version scripts/setup.sh pins
        spec = str(step_env(workflow, job, run_step).get("TORCH_SPEC", ""))
        pin = setup_torch_pin(setup_text)
        if "download.pytorch.org/whl/cpu" not in spec or (pin and pin not in spec.split()):
            out.append(f"job pytest: TORCH_SPEC must be '{pin} --index-url https://download.pytorch.org/whl/cpu' "
                       f"(found {spec!r})")
        # the system packages that setup.sh installs only as root, installed with sudo before .ci/run
        packages = setup_apt_packages(setup_text)
        apt = [s for s in steps[:exact[0]] if re.search(r"\bsudo\b.*\bapt(-get)?\s+install\b", run_of(s))]
        installed = set(re.findall(r"[\w.+-]+", " ".join(run_of(s) for s in apt)))
        missing = [p for p in packages if p not in installed]
        if not packages:
            out.append("scripts/setup.sh: no apt_install packages found")
        elif missing:
            out.append(f"job pytest: no `sudo apt-get install` step before `bash .ci/run` installs {missing}")
    return out


def _nf_test_problems(workflow: dict, job: dict, root: Path) -> list[str]:
    out = []
    steps = steps_of(job)
    pins = [str((s.get("with") or {}).get("version")) for s in steps if action(s) == "nf-core/setup-nf-test"]
    pins += [m for s in steps for m in re.findall(r"get\.nf-test\.com\s*\|\s*bash\s+-s\s+(\S+)", run_of(s))]
    if not pins or any(version_tuple(p) is None for p in pins):
        out.append(f"job nf-test: nf-test is not installed at a pinned version ({pins})")
    elif any(version_tuple(p) < NF_TEST_MIN for p in pins):
        out.append(f"job nf-test: nf-test {pins} is older than {'.'.join(map(str, NF_TEST_MIN))}, the first whose "
                   "test harness compiles under the strict syntax parser (the default from Nextflow 26.04)")
    runs = [i for i, s in enumerate(steps) if re.search(r"\bnf-test\s+test\b", run_of(s))]
    if not runs:
        return out + ["job nf-test does not run `nf-test test`"]

    config = root / "nextflow.config"
    profiles = config_profiles(config.read_text()) if config.is_file() else set()
    for i in runs:
        for line in command_lines(run_of(steps[i])):
            if "nf-test test" not in line:
                continue
            used = profile_option(line)
            if used is None or not {"test", "venv"} <= set(used):
                out.append(f"job nf-test: `{line}` must use the profiles test and venv (--profile=+test,venv)")
            for profile in used or []:
                if "${{" not in profile and profile not in profiles:
                    out.append(f"job nf-test: profile {profile} is not defined in nextflow.config's profiles block")

    setup = first_index(steps, lambda s: any(re.fullmatch(r"make\s+setup(\s.*)?", line)
                                             for line in command_lines(run_of(s))))
    if setup is None or setup > runs[0]:
        out.append("job nf-test must run `make setup` before nf-test (the venv profile runs enpact from .venv)")
    else:
        spec = str(step_env(workflow, job, steps[setup]).get("TORCH_SPEC", ""))
        if "download.pytorch.org/whl/cpu" not in spec:
            out.append("job nf-test: `make setup` must install torch from the CPU index (TORCH_SPEC)")

    # with --tag, every *.nf.test must carry one of the tags, or CI never runs it
    commands = [line for i in runs for line in command_lines(run_of(steps[i])) if "nf-test test" in line]
    if commands and all(tag_options(c) for c in commands):
        matrix = (job.get("strategy") or {}).get("matrix") or {}
        tags: set[str] = set()
        for command in commands:
            for option in tag_options(command):
                ref = re.fullmatch(r"\$\{\{\s*matrix\.([\w-]+)\s*\}\}", option)
                tags.update(as_list(matrix.get(ref.group(1))) if ref else option.split(","))
        for path, file_tags in nf_test_files(root).items():
            if not file_tags & tags:
                out.append(f"job nf-test: {path} (tags {sorted(file_tags)}) has none of the tags {sorted(tags)}: "
                           "CI would never run it")
    return out


def _images_problems(job: dict, root: Path) -> list[str]:
    out = []
    steps = steps_of(job)
    condition = str(job.get("if") or "")
    if "refs/tags/" not in condition:
        out.append("job images must run on tags only (if: startsWith(github.ref, 'refs/tags/v'))")
    needs = set(as_list(job.get("needs")))
    if not {"pytest", "nf-test"} <= needs:
        out.append(f"job images must need pytest and nf-test (needs: {sorted(needs)})")
    permissions = job.get("permissions") or {}
    if permissions.get("packages") != "write":
        out.append("job images needs `permissions: packages: write` to push to ghcr.io")
    if permissions.get("contents") not in ("read", None):
        out.append("job images: contents permission must stay read")

    login = [s for s in steps if action(s) == "docker/login-action"]
    if not any((s.get("with") or {}).get("registry") == "ghcr.io"
               and "secrets.GITHUB_TOKEN" in str((s.get("with") or {}).get("password")) for s in login):
        out.append("job images must log in to ghcr.io with secrets.GITHUB_TOKEN (docker/login-action)")
    if "ghcr.io/" not in yaml.safe_dump(job):
        out.append("job images does not name a ghcr.io/ image")
    if not any(action(s) == "docker/setup-buildx-action" for s in steps):
        out.append("job images: docker/setup-buildx-action is missing")
    version_steps = [s for s in steps if "pyproject.toml" in run_of(s)
                     and re.search(r"GITHUB_REF_NAME|github\.ref_name|GITHUB_REF\b", run_of(s))
                     and "exit 1" in run_of(s)]
    if not version_steps:
        out.append("job images must check that the tag's version equals pyproject.toml's (and fail otherwise)")

    builds = [s for s in steps if action(s) == "docker/build-push-action"]
    dockerfiles = {str(p.relative_to(root)) for p in (root / "containers").glob("Dockerfile*")}
    built = {str((s.get("with") or {}).get("file")) for s in builds}
    if not dockerfiles:
        out.append("containers/Dockerfile* not found")
    if built != dockerfiles:
        out.append(f"job images must build each of {sorted(dockerfiles)} (builds {sorted(built)})")
    for step in builds:
        with_ = step.get("with") or {}
        file, tags = str(with_.get("file")), str(with_.get("tags") or "")
        if with_.get("context") not in (".", "./"):
            out.append(f"job images: {file} must be built with the repository root as context")
        if with_.get("push") not in (True, "true"):
            out.append(f"job images: {file} is not pushed (push: true)")
        if not tags:
            out.append(f"job images: {file} has no tags")
        elif file.endswith(".gpu") != tags.rstrip().endswith("-gpu"):
            out.append(f"job images: the tag of {file} must end with -gpu exactly when it is the GPU image")
    return out


def header_problems(text: str) -> list[str]:
    """The workflow's leading comment must say why it is checked statically, and by what."""
    header = "\n".join(line for line in text.splitlines()[:20] if line.startswith("#"))
    out = []
    if "tests/test_ci_definition.py" not in header:
        out.append("the header comment does not name tests/test_ci_definition.py")
    if "cannot run" not in header:
        out.append("the header comment does not say that the workflow cannot run on the build machines")
    return out


# --------------------------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workflow() -> dict:
    return load_workflow()


def test_workflow_parses_and_has_the_jobs(workflow):
    assert isinstance(workflow, dict)
    assert triggers(workflow) is not None, "`on:` (read by YAML as True) is missing"
    assert set(REQUIRED_JOBS) <= set(workflow["jobs"])


def test_workflow_has_no_problems(workflow):
    assert problems(workflow) == []


def test_header_comment():
    assert header_problems(WORKFLOW.read_text()) == []
    assert header_problems("name: CI\n") != []


def test_repository_facts_the_checks_rely_on():
    """The parsers find what they look for (loose on values, so that a version bump needs no edit here)."""
    config = (ROOT / "nextflow.config").read_text()
    assert version_tuple(version_floor(config) or "") is not None
    assert {"test", "venv", "docker"} <= config_profiles(config)
    assert {"setup", "test"} <= makefile_targets((ROOT / "Makefile").read_text())
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert {"bcftools", "tabix", "samtools", "r-cran-glmnet"} <= set(setup_apt_packages(setup))
    assert re.fullmatch(r"torch==\d+\.\d+\.\d+", setup_torch_pin(setup) or "")
    assert readme_test_command((ROOT / "README.md").read_text()) == "make test"
    assert "tests/nextflow/default.nf.test" in nf_test_files(ROOT)


def test_profile_parser():
    config = """
params { venv = 1 }
profiles {
    // venv { } in a comment is not a profile
    docker {
        docker.enabled = true
        nested { x = 1 }
    }
    test { includeConfig 'conf/test.config' }
}
"""
    assert config_profiles(config) == {"docker", "test"}
    assert config_profiles(config + "\nprofiles {\n}\n") == {"docker", "test"}
    assert config_profiles("params { }\n") == set()


def _set(path: str, value):
    """A mutation: set workflow[path...] = value; the value DELETE removes the key."""
    def mutate(wf):
        *parents, last = path.split("/")
        node = wf
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return mutate


DELETE = object()


def _step(job: str, predicate):
    """A mutation applied to the first step of `job` that matches."""
    def wrap(change):
        def mutate(wf):
            step = next(s for s in wf["jobs"][job]["steps"] if predicate(s))
            change(step)
        return mutate
    return wrap


def _runs(text):
    return lambda s: text in run_of(s)


def _uses(name):
    return lambda s: action(s) == name


def _without_push_tags(wf):
    triggers(wf)["push"].pop("tags")


def _replace_in_run(job, old, new):
    def change(step):
        step["run"] = run_of(step).replace(old, new)
    return _step(job, _runs(old))(change)


def _with(job, uses, key, value):
    def change(step):
        if value is DELETE:
            step["with"].pop(key)
        else:
            step["with"][key] = value
    return _step(job, _uses(uses))(change)


def _drop_step(job, predicate):
    def mutate(wf):
        steps = wf["jobs"][job]["steps"]
        steps.remove(next(s for s in steps if predicate(s)))
    return mutate


def _move_make_setup_last(wf):
    steps = wf["jobs"]["nf-test"]["steps"]
    step = next(s for s in steps if "make setup" in run_of(s))
    steps.remove(step)
    steps.append(step)


def _drop_gpu_build(wf):
    steps = wf["jobs"]["images"]["steps"]
    steps.remove(next(s for s in steps if (s.get("with") or {}).get("file") == "containers/Dockerfile.gpu"))


MUTATIONS = {
    "no push tags": (_without_push_tags, "on.push.tags"),
    "no pull_request": (lambda wf: triggers(wf).pop("pull_request"), "pull_request"),
    "write-all permissions": (_set("permissions", "write-all"), "top-level permissions"),
    "no concurrency": (_set("concurrency", DELETE), "concurrency"),
    "no images job": (_set("jobs/images", DELETE), "job images is missing"),
    "images without needs": (_set("jobs/images/needs", DELETE), "must need pytest and nf-test"),
    "images needs only pytest": (_set("jobs/images/needs", "pytest"), "must need pytest and nf-test"),
    "images on every push": (_set("jobs/images/if", DELETE), "on tags only"),
    "images without packages write": (_set("jobs/images/permissions", {"contents": "read"}), "packages: write"),
    "images without the GPU Dockerfile": (_drop_gpu_build, "must build each of"),
    "images build a missing Dockerfile": (
        _with("images", "docker/build-push-action", "file", "containers/Dockerfile.rocm"), "does not exist"),
    "images not pushed": (_with("images", "docker/build-push-action", "push", False), "is not pushed"),
    "images without login": (_drop_step("images", _uses("docker/login-action")), "log in to ghcr.io"),
    "images without the version check": (_drop_step("images", _runs("pyproject.toml")), "pyproject.toml"),
    "pytest runs make test": (_replace_in_run("pytest", "bash .ci/run", "make test"), "bash .ci/run"),
    "pytest runs .ci/run as root": (_replace_in_run("pytest", "bash .ci/run", "sudo -E bash .ci/run"),
                                    "bash .ci/run"),
    "pytest on macos": (_set("jobs/pytest/runs-on", "macos-latest"), "ubuntu-latest"),
    "pytest without TORCH_SPEC": (_set("env/TORCH_SPEC", DELETE), "TORCH_SPEC"),
    "pytest with another torch": (
        _set("env/TORCH_SPEC", "torch==2.1.0 --index-url https://download.pytorch.org/whl/cpu"), "TORCH_SPEC"),
    "pytest without npm": (_replace_in_run("pytest", " npm", ""), "['npm']"),
    "pytest without apt step": (_drop_step("pytest", _runs("apt-get install")), "sudo apt-get install"),
    "python as a float": (_with("pytest", "actions/setup-python", "python-version", 3.11), "python-version"),
    "floor missing from lint": (_set("jobs/lint/strategy/matrix/NXF_VER", ["latest-stable"]), "floor 26.04.0"),
    "latest missing from nf-test": (_set("jobs/nf-test/strategy/matrix/NXF_VER", ["26.04.0"]), "latest-stable"),
    "NXF_VER below the floor": (_set("jobs/lint/strategy/matrix/NXF_VER", ["25.10.0", "26.04.0", "latest-stable"]),
                                "25.10.0 is neither"),
    "NXF_VER as a number": (_set("jobs/lint/strategy/matrix/NXF_VER", [26.10, "26.04.0", "latest-stable"]),
                            "quoted string"),
    "env NXF_VER latest-stable": (_set("jobs/lint/env/NXF_VER", "${{ matrix.NXF_VER }}"),
                                  "only accepts version numbers"),
    "setup-nextflow unpinned": (_with("lint", "nf-core/setup-nextflow", "version", DELETE), "without `version:`"),
    "setup-nextflow ignores the matrix": (_with("nf-test", "nf-core/setup-nextflow", "version", "26.04.0"),
                                          "does not use matrix.NXF_VER"),
    "lint without java 17": (_with("lint", "actions/setup-java", "java-version", "11"), "java-version 17"),
    "lint without nextflow lint": (_replace_in_run("lint", "nextflow lint", "nextflow info"),
                                   "does not run `nextflow lint`"),
    "lint ignores warnings": (_step("lint", _runs("nextflow lint"))(
        lambda s: s.update(run="nextflow lint -o concise .")), "warnings"),
    "lint of main.nf only": (_step("lint", _runs("nextflow lint"))(
        lambda s: s.update(run="nextflow lint main.nf  # warnings")), "whole repository"),
    "nf-test without venv": (_replace_in_run("nf-test", "+test,venv", "+test"), "profiles test and venv"),
    "nf-test with an unknown profile": (_replace_in_run("nf-test", "+test,venv", "+test,venv,condaa"),
                                        "condaa is not defined"),
    "nf-test without make setup": (_drop_step("nf-test", _runs("make setup")), "`make setup` before"),
    "nf-test make setup after": (_move_make_setup_last, "`make setup` before"),
    "nf-test misses the module tests": (_set("jobs/nf-test/strategy/matrix/tag", ["pipeline"]),
                                        "CI would never run it"),
    "nf-test unpinned": (_with("nf-test", "nf-core/setup-nf-test", "version", DELETE), "pinned version"),
    "nf-test too old": (_with("nf-test", "nf-core/setup-nf-test", "version", "0.9.2"), "strict syntax"),
    "make target that does not exist": (_replace_in_run("nf-test", "make setup", "make setup-venv"),
                                        "no target setup-venv"),
    "unpinned action": (_step("pytest", _uses("actions/checkout"))(lambda s: s.update(uses="actions/checkout@main")),
                        "not pinned"),
    "run names a missing file": (_replace_in_run("pytest", "bash .ci/run", "bash .ci/run\nbash scripts/nope.sh"),
                                 "scripts/nope.sh` does not exist"),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_each_check_can_fail(workflow, name):
    mutate, expected = MUTATIONS[name]
    broken = copy.deepcopy(workflow)
    mutate(broken)
    found = problems(broken)
    assert any(expected in p for p in found), f"{name}: expected a problem containing {expected!r}, got {found}"


def test_on_key_spelled_as_string(workflow):
    """A workflow written with a quoted "on" key (or parsed by YAML 1.2) is read the same way."""
    respelled = copy.deepcopy(workflow)
    respelled["on"] = respelled.pop(True)
    assert problems(respelled) == []


def test_missing_version_floor(workflow, tmp_path):
    for name in ("nextflow.config", "Makefile", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    config = (tmp_path / "nextflow.config").read_text()
    (tmp_path / "nextflow.config").write_text(re.sub(r"nextflowVersion\s*=.*", "", config))
    assert any("version floor is unknown" in p for p in problems(workflow, tmp_path))


# --------------------------------------------------------------------------------------------------------------
# two steps executed with stand-ins: the lint gate and the release version check
# --------------------------------------------------------------------------------------------------------------

def _job_step(workflow: dict, job: str, text: str) -> str:
    return next(run_of(s) for s in steps_of(workflow["jobs"][job]) if text in run_of(s))


def _run_step(script: str, cwd: Path, tmp_path: Path, env: dict, fakes: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a step's script the way GitHub does (bash -eo pipefail), with stand-in commands first on PATH."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python3").unlink(missing_ok=True)
    (bin_dir / "python3").symlink_to(sys.executable)
    for name, body in fakes.items():
        (bin_dir / name).write_text("#!/usr/bin/env bash\n" + body)
        (bin_dir / name).chmod(0o755)
    script_file = tmp_path / "step.sh"
    script_file.write_text(script)
    full_env = {**os.environ, **env, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=60)


def _lint_report(errors: int = 0, warnings: int = 0, files: int = 25) -> str:
    entry = {"filename": "./modules/enpact_loci/main.nf", "startLine": 3, "startColumn": 5, "message": "m"}
    summary = {"errors": errors, "filesWithErrors": min(errors, 1), "filesWithoutErrors": files - min(errors, 1),
               "filesFormatted": 0, "warnings": warnings, "filesWithWarnings": min(warnings, 1),
               "filesWithoutWarnings": files - min(warnings, 1)}
    return json.dumps({"date": "2026-01-01T00:00:00Z", "summary": summary, "errors": [entry] * errors,
                       "warnings": [entry] * warnings}, indent=4)


@pytest.mark.parametrize("report, status, passes, says", [
    (_lint_report(), 0, True, "25 files checked, 0 errors, 0 warnings"),
    (_lint_report(warnings=2), 0, False, "::warning file=modules/enpact_loci/main.nf,line=3,col=5::m"),
    (_lint_report(errors=1), 1, False, "::error file=modules/enpact_loci/main.nf,line=3"),
    (_lint_report(files=0), 0, False, "checked no files"),
    ("ERROR ~ Unknown option: -o", 1, False, "wrote no JSON report"),
])
def test_lint_step_fails_on_errors_and_warnings(workflow, tmp_path, report, status, passes, says):
    script = _job_step(workflow, "lint", "nextflow lint")
    (tmp_path / "report.txt").write_text(report + "\n")
    fake = f'[ "$1" = lint ] || exit 2\ncat "{tmp_path / "report.txt"}"\nexit {status}\n'
    proc = _run_step(script, tmp_path, tmp_path, {"RUNNER_TEMP": str(tmp_path)}, {"nextflow": fake})
    assert (proc.returncode == 0) == passes, proc.stdout + proc.stderr
    assert says in proc.stdout


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the step reads pyproject.toml with tomllib (Python 3.11)")
@pytest.mark.parametrize("matches", [True, False])
def test_images_version_step(workflow, tmp_path, matches):
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    tag = f"v{version}" if matches else "v999.0.0"
    output = tmp_path / "github_output"
    output.write_text("")
    script = _job_step(workflow, "images", "pyproject.toml")
    proc = _run_step(script, ROOT, tmp_path, {"GITHUB_REF_NAME": tag, "GITHUB_OUTPUT": str(output),
                                               "GITHUB_REPOSITORY_OWNER": "EnPACT-Org"}, {})
    if matches:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert output.read_text().splitlines() == [f"version={version}", "image=ghcr.io/enpact-org/enpact"]
    else:
        assert proc.returncode == 1
        assert "pyproject.toml says" in proc.stdout
