"""Helpers shared by tests/test_nextflow_static.py and tests/test_nextflow_contract.py.

Nextflow cannot be installed on the build machines, so the Nextflow layer is checked statically: a Groovy 4
parser (scripts/fetch-groovy.sh puts its jar in .cache/groovy/) reads every .nf/.config file, and the module
scripts are rendered by tests/nextflow/render_modules.groovy and fed to the `enpact` argument parser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GROOVY_JAR = ROOT / ".cache" / "groovy" / "groovy.jar"
SECTION_NAMES = ("input", "output", "when", "script", "stub")


def require_groovy() -> tuple[str, Path]:
    """java and the Groovy jar; without them: fail under CI (it installs both), skip elsewhere."""
    java = shutil.which("java")
    problems = []
    if not GROOVY_JAR.is_file():
        problems.append(f"{GROOVY_JAR.relative_to(ROOT)} is missing (run scripts/fetch-groovy.sh or scripts/setup.sh --dev)")
    if java is None:
        problems.append("java is not on PATH (scripts/setup.sh --dev installs default-jre-headless)")
    if problems:
        message = "Groovy parser for the static Nextflow checks unavailable: " + "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return java, GROOVY_JAR


def run_groovy(script: Path, args: list[str], timeout: int = 600) -> str:
    """Run a Groovy script in one JVM; its stdout."""
    java, jar = require_groovy()
    command = [java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss4m", "-cp", str(jar),
               "groovy.ui.GroovyMain", str(script), *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout


def groovy_syntax(paths: list[Path]) -> dict[Path, str | None]:
    """Parse files with the Groovy parser (syntax only): path -> None if it parses, else the error message."""
    out = run_groovy(HERE / "groovy_syntax.groovy", [str(p) for p in paths])
    results: dict[Path, str | None] = {}
    for line in out.splitlines():
        status, _, rest = line.partition("\t")
        if status == "OK":
            results[Path(rest)] = None
        elif status == "ERROR":
            path, _, message = rest.partition("\t")
            results[Path(path)] = message or "parse error"
    missing = [p for p in paths if Path(str(p)) not in results]
    if missing:
        raise RuntimeError(f"the syntax checker gave no verdict for {missing}:\n{out[-2000:]}")
    return results


def render_entries(entries: list[dict], directory: Path) -> dict[str, dict]:
    """Run render_modules.groovy on entries [{id, process, labels, configs, params, inputs, script_file?, attempt?,
    engine?}] in one JVM: {id: {script, outputs, ext, directives, error}}."""
    # one closure per entry: each compiles to its own method (a single literal would exceed the JVM's 64 KB limit)
    data = directory / "render_data.groovy"
    data.write_text("[\n" + "".join(f"    {{ -> {groovy_literal(e)} }},\n" for e in entries) + "]\n")
    out = run_groovy(HERE / "render_modules.groovy", [str(data)])
    return {result["id"]: result for result in json.loads(out)}


# --------------------------------------------------------------------------------------------------------------
# nextflow.config params block and profiles
# --------------------------------------------------------------------------------------------------------------

_VALUE = re.compile(r"""^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>'[^']*'|"[^"]*"|-?\d+(?:\.\d+)?(?:[eE]-?\d+)?|true|false|null)\s*(?://.*)?$""")


def config_params(path: Path = ROOT / "nextflow.config") -> dict[str, object]:
    """The `params { ... }` block of nextflow.config as a dict (only literal values are allowed there)."""
    lines = path.read_text().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if re.match(r"^params\s*\{\s*$", line))
    except StopIteration:
        raise AssertionError(f"{path}: no top-level `params {{` block") from None
    params: dict[str, object] = {}
    for number, line in enumerate(lines[start + 1:], start + 2):
        text = line.strip()
        if text == "}":
            return params
        if not text or text.startswith("//"):
            continue
        match = _VALUE.match(text)
        if not match:
            raise AssertionError(f"{path}:{number}: params must be `name = literal` lines: {text!r}")
        params[match["name"]] = _literal(match["value"])
    raise AssertionError(f"{path}: unterminated params block")


@dataclass
class Profile:
    """A profile of nextflow.config: the config files it includes, its params and its other settings."""
    name: str
    includes: list[Path]
    params: dict[str, object]
    settings: dict[str, object]


def profiles(path: Path = ROOT / "nextflow.config") -> dict[str, Profile]:
    """The profiles block of nextflow.config (one `name { ... }` per profile, no nested blocks)."""
    text = path.read_text()
    start = text.index("\nprofiles {")
    end = text.index("\n}\n", start)   # the profiles block closes at the start of a line
    block = text[start:end]
    found = {}
    for match in re.finditer(r"^    ([A-Za-z_]\w*)\s*\{\s*$(.*?)^    \}\s*$", block, re.M | re.S):
        includes, params, settings = [], {}, {}
        for line in match.group(2).splitlines():
            text_line = line.strip()
            if not text_line or text_line.startswith("//"):
                continue
            include = re.match(r"includeConfig\s+'([^']+)'", text_line)
            if include:
                includes.append(ROOT / include.group(1))
                continue
            assignment = re.match(r"([\w.]+)\s*=\s*(.+)$", text_line)
            if not assignment:
                raise AssertionError(f"nextflow.config profile {match.group(1)}: unexpected line {text_line!r}")
            key, value = assignment.groups()
            literal = _VALUE.match(f"x = {value}")
            parsed = _literal(literal["value"]) if literal else value
            if key.startswith("params."):
                params[key.removeprefix("params.")] = parsed
            else:
                settings[key] = parsed
        found[match.group(1)] = Profile(match.group(1), includes, params, settings)
    return found


def profile_params(names: list[str], overrides: dict | None = None) -> dict[str, object]:
    """params of a run with these profiles (in command-line order) and a parameter file's values on top."""
    params = config_params()
    known = profiles()
    for name in names:
        profile = known[name]
        params.update(profile.params)
        for include in profile.includes:
            if re.search(r"^params\s*\{", include.read_text(), re.M):
                params.update(config_params(include))
    params.update(overrides or {})
    return {k: v.replace("${projectDir}", str(ROOT)) if isinstance(v, str) else v for k, v in params.items()}


def profile_configs(names: list[str], extra: list[Path] = ()) -> list[Path]:
    """Config files of a run with these profiles, in the order Nextflow applies them (then user -c files)."""
    configs = [ROOT / "conf" / "base.config", ROOT / "conf" / "modules.config"]
    for name in names:
        configs += profiles()[name].includes
    return configs + list(extra)


def _literal(text: str) -> object:
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if text[0] in "'\"":
        return text[1:-1]
    return float(text) if any(c in text for c in ".eE") else int(text)


# --------------------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Output:
    line: str
    patterns: list[str]   # path patterns as written (Groovy strings, e.g. ${prefix}.h5)
    literals: list[str]   # the same with their quotes, as Groovy source
    emit: str | None
    optional: bool


@dataclass
class Process:
    path: Path
    name: str
    directives: str
    sections: dict[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return re.findall(r"^\s*label\s+['\"]([^'\"]+)['\"]", self.directives, re.M)

    @property
    def has_tag(self) -> bool:
        return re.search(r"^\s*tag\s+\S", self.directives, re.M) is not None

    @property
    def input_names(self) -> list[str]:
        return re.findall(r"\b(?:val|path|env)\s*\(\s*([A-Za-z_]\w*)", _code(self.sections.get("input", "")))

    @property
    def outputs(self) -> list[Output]:
        outputs = []
        for line in _code(self.sections.get("output", "")).splitlines():
            if not line.strip():
                continue
            found = list(re.finditer(r"""\bpath\s*\(?\s*(["'])(.*?)\1""", line))
            emit = re.search(r"\bemit:\s*(\w+)", line)
            outputs.append(Output(line.strip(), [m.group(2) for m in found], [m.group(1) + m.group(2) + m.group(1) for m in found],
                                  emit.group(1) if emit else None,
                                  re.search(r"\boptional:\s*true", line) is not None))
        return outputs

    def split_script(self, section: str = "script") -> tuple[str, str]:
        """(Groovy preamble, triple-quoted shell string including the quotes) of the script or stub section."""
        text = self.sections.get(section, "")
        first, last = text.find('"""'), text.rfind('"""')
        if first < 0 or last == first:
            raise AssertionError(f"{self.path}: {section}: section has no triple-quoted script")
        return text[:first], text[first:last + 3]


def _code(text: str) -> str:
    """Text without // comments (outside strings, good enough for declarations)."""
    return "\n".join(re.sub(r"\s//.*$", "", line) for line in text.splitlines())


def parse_process(path: Path) -> Process:
    """The process defined in a module file, its directives and its sections."""
    text = path.read_text()
    match = re.search(r"^process\s+([A-Z0-9_]+)\s*\{\s*$", text, re.M)
    if not match:
        raise AssertionError(f"{path}: no `process NAME {{` line")
    body = text[match.end():text.rstrip().rfind("}")]
    process = Process(path, match.group(1), "")
    current, chunks = None, {}
    directive_lines = []
    for line in body.splitlines(keepends=True):
        label = line.strip().rstrip(":")
        if line.strip().endswith(":") and label in SECTION_NAMES and line.strip() == f"{label}:":
            current = label
            chunks[current] = []
            continue
        if current is None:
            directive_lines.append(line)
        else:
            chunks[current].append(line)
    process.directives = "".join(directive_lines)
    process.sections = {k: "".join(v) for k, v in chunks.items()}
    return process


def module_files() -> list[Path]:
    return sorted(ROOT.glob("modules/*/main.nf"))


def nextflow_files() -> list[Path]:
    """Every Nextflow script and config file of the pipeline (and the nf-test files)."""
    files = [ROOT / "main.nf", ROOT / "nextflow.config", ROOT / "nf-test.config"]
    for pattern in ("workflows/*.nf", "subworkflows/*.nf", "modules/*/main.nf", "modules/*/tests/*.nf.test",
                    "conf/*.config", "tests/nextflow/*.config", "tests/nextflow/*.nf.test"):
        files += sorted(ROOT.glob(pattern))
    return [f for f in files if f.exists()]


def groovy_literal(value: object) -> str:
    """A Python value as Groovy source (maps, lists, strings, numbers, booleans, None; FakePath via p(...))."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, StagedFile):
        return f"p({groovy_literal(value.name)})"
    if isinstance(value, StagedFiles):
        return "pl(" + ", ".join(groovy_literal(n) for n in value.names) + ")"
    if isinstance(value, dict):
        if not value:
            return "[:]"
        return "[" + ", ".join(f"{groovy_literal(str(k))}: {groovy_literal(v)}" for k, v in value.items()) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(groovy_literal(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{text}'"


@dataclass(frozen=True)
class StagedFile:
    """A staged input file (or directory, when the name has no dot) of a process."""
    name: str


@dataclass(frozen=True)
class StagedFiles:
    """Several staged input files of one input (Nextflow renders them blank-separated)."""
    names: tuple[str, ...]
