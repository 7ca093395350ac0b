"""Helpers shared by the static Nextflow tests (tests/test_nextflow_static.py, _contract, _parity, _profiles).

Where Nextflow is not at hand the Nextflow layer is checked statically: a Groovy 4 parser (scripts/fetch-groovy.sh
puts its jar in .cache/groovy/) reads every .nf/.config file, and the module scripts are rendered by
tests/nextflow/render_modules.groovy and fed to the `enpact` argument parser.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import posixpath
import re
import shlex
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


# --------------------------------------------------------------------------------------------------------------
# Module scripts and the enpact CLI
# --------------------------------------------------------------------------------------------------------------

def subcommand_of(module: Path) -> str:
    """modules/enpact_merge_features/main.nf -> merge-features."""
    return module.parent.name.removeprefix("enpact_").replace("_", "-")


def takes_options(process: Process) -> bool:
    return process.input_names[-1:] == ["options"]


def script_file(process: Process, section: str, directory: Path) -> Path:
    """The module's script (or stub) section as a Groovy script returning [script:, outputs:]."""
    preamble, string = process.split_script(section)
    outputs = [lit for out in process.outputs for lit in out.literals]
    tag = hashlib.sha1(str(process.path).encode()).hexdigest()[:8]
    path = directory / f"{process.path.parent.name}.{tag}.{section}.groovy"
    path.write_text(f"{preamble}\nreturn [script: ({string}), outputs: [{', '.join(outputs)}]]\n")
    return path


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
        return {_norm(ns.out)} | (under(ns.options_dir, "*.args") if ns.options_dir else set())
    if command == "loci":
        out = _norm(ns.out)
        return {out, re.sub(r"\.tsv$", "", out) + ".dropped.tsv"}
    if command == "chunk":
        return under(ns.outdir, "*.tsv")
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

        files = {_norm(p) for p in output_paths(ns.gwas_files, ns.out)}
        files |= {_norm(Path(p).parent) for p in files if Path(p).parent != Path(".")}   # the folder of the results
        if ns.plots_prefix:
            for prefix in plot_prefixes(ns.gwas_files, ns.plots_prefix):
                files |= {_norm(f"{prefix}.qq.png"), _norm(f"{prefix}.manhattan.png")}
        return files
    if command == "finemap":
        from enpact.finemap import output_path

        files = {_norm(output_path(Path(t), ns.out, len(ns.twas) > 1)) for t in ns.twas}
        return files | {_norm(Path(p).parent) for p in files if Path(p).parent != Path(".")}   # their folder
    if command == "select":
        return {_norm(ns.out), _norm(ns.chunks), _norm(f"{ns.chunks}/*.tsv")}
    if command == "loci-union":
        return {_norm(ns.out)}
    if command == "covariance":
        return {_norm(ns.out)}
    if command == "multixcan":
        from enpact.layout import gwas_name

        name = gwas_name(ns.gwas_file) if ns.gwas_file else "{gwas}"
        return {_norm(str(p).replace("{gwas}", name)) for p in (ns.out, ns.qq_plot) if p}
    if command == "accuracy":
        return under(ns.outdir, "personalized_accuracy.tsv", "personalized.json")
    if command == "report":
        return under(f"{ns.outdir}/report", "index.html", "summary.json", "*")
    raise AssertionError(f"no output contract for `enpact {command}`: add it to written_files()")
