"""Static checks of the Nextflow layer (Nextflow itself cannot be installed on the build machines).

- every .nf / .config / .nf.test file parses with the Groovy 4 parser (syntax only, one JVM for all files);
  a copy of a real module with a broken brace must fail the same check;
- nextflow_schema.json is valid JSON Schema (draft 2020-12), defines every `params.X` used by the pipeline and
  every parameter of docs/cli-contract.md, and its defaults equal those of nextflow.config;
- every process has a tag, a `stub:`, named emits and a versions output, and reads no params; each module whose
  step has options takes them as its last input, `val(options)`, and puts them on its command line before the
  user's ext.args; conf/modules.config sets no option of ours (ext.args is the user's pass-through);
- includes resolve, every module is used, every withName selector names a process;
- profiles, reports, containers and nf-test files are where docs/nextflow.md says they are.
The CLI contract (command lines and outputs of the modules) is tests/test_nextflow_contract.py.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "nextflow"))

from nf_tooling import ROOT, config_params, groovy_syntax, module_files, nextflow_files, parse_process  # noqa: E402

SCHEMA_PATH = ROOT / "nextflow_schema.json"
SCHEMA_GROUPS = ["input_options", "predictor_options", "model_options", "split_options", "linearization_options",
                 "database_options", "finemap_options", "chunking_options", "output_options", "nextflow_options"]
GPU_PROCESSES = {"ENPACT_PREDICT", "ENPACT_PERSONALIZE"}
PROFILES = ["test", "docker", "singularity", "apptainer", "gpu", "slurm", "awsbatch", "google_batch", "debug"]
MODULES = module_files()


def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def schema_properties() -> dict[str, dict]:
    return {name: spec for group in schema()["$defs"].values() for name, spec in group["properties"].items()}


# --------------------------------------------------------------------------------------------------------------
# Syntax (Groovy parser)
# --------------------------------------------------------------------------------------------------------------

def broken_copies(directory: Path) -> dict[str, Path]:
    """Copies of a real module with a brace removed and with one brace too many."""
    text = (ROOT / "modules/enpact_predict/main.nf").read_text()
    missing = directory / "missing_brace.nf"
    missing.write_text(text[: text.rstrip().rfind("}")])
    extra = directory / "extra_brace.nf"
    extra.write_text(text.replace("    input:\n", "    }\n    input:\n", 1))
    return {"missing": missing, "extra": extra}


@pytest.fixture(scope="session")
def syntax(tmp_path_factory) -> tuple[dict[Path, str | None], dict[str, Path]]:
    """One JVM: the pipeline's files and the broken copies."""
    broken = broken_copies(tmp_path_factory.mktemp("broken_nf"))
    files = nextflow_files() + list(broken.values())
    return groovy_syntax(files), broken


def test_pipeline_files_are_all_checked():
    names = {str(p.relative_to(ROOT)) for p in nextflow_files()}
    for required in ["main.nf", "nextflow.config", "workflows/enpact.nf", "conf/base.config", "conf/modules.config",
                     "conf/test.config", "conf/gpu.config", "conf/slurm.config", "conf/awsbatch.config",
                     "conf/google.config", "subworkflows/train.nf", "subworkflows/personalize.nf",
                     "subworkflows/linearize.nf", "subworkflows/twas.nf", "nf-test.config",
                     "tests/nextflow/default.nf.test", "tests/nextflow/nextflow.config"]:
        assert required in names, f"{required} missing"
    assert len(MODULES) >= 12


def test_nextflow_files_parse(syntax):
    results, _ = syntax
    errors = {str(p.relative_to(ROOT)): m for p, m in results.items() if m and str(p).startswith(str(ROOT))}
    assert not errors, "Groovy syntax errors:\n" + "\n".join(f"{p}: {m}" for p, m in errors.items())


def test_checker_rejects_a_broken_brace(syntax):
    results, broken = syntax
    for kind, path in broken.items():
        assert results[path], f"a module with a {kind} brace passed the syntax check"


@dataclass(frozen=True)
class StrictRule:
    """A construct Nextflow's strict parser (nf-lang, the default from Nextflow 26.04) rejects or deprecates.

    `find(path, code)` returns the 1-based lines where `code` (comments stripped) uses it; `bad` is a planted
    example the rule must catch, `good` the way to write it instead, which it must let through.
    """
    name: str
    advice: str
    find: Callable[[Path, str], list[int]]
    bad: tuple[str, str]    # (file name, source)
    good: tuple[str, str]


def _lines(pattern: str, flags: int = re.M) -> Callable[[Path, str], list[int]]:
    """A finder: lines where a regular expression matches."""
    regex = re.compile(pattern, flags)
    return lambda _path, code: [code[: m.start()].count("\n") + 1 for m in regex.finditer(code)]


def _only_in(suffix: str, finder: Callable[[Path, str], list[int]]) -> Callable[[Path, str], list[int]]:
    """A finder applied to files with this suffix only."""
    return lambda path, code: finder(path, code) if path.name.endswith(suffix) else []


def _block_end(code: str, open_brace: int) -> int:
    """Index of the brace that closes the one at open_brace."""
    depth = 0
    for index in range(open_brace, len(code)):
        depth += {"{": 1, "}": -1}.get(code[index], 0)
        if depth == 0:
            return index
    return len(code)


# the params object (not file names such as pipeline_info/params.json, options such as --params, or ch_params)
PARAMS_REFERENCE = re.compile(r"(?<![\w/.\-'\"])params\b(?!\.json\b)")


def _params_outside_entry_workflow(path: Path, code: str) -> list[int]:
    """`params` read anywhere but in the entry workflow (the unnamed `workflow {` of main.nf)."""
    if not path.name.endswith(".nf"):
        return []
    entry = re.search(r"^workflow\s*\{", code, re.M)
    start, end = (entry.start(), _block_end(code, entry.end() - 1)) if entry else (-1, -1)
    return [code[: m.start()].count("\n") + 1 for m in PARAMS_REFERENCE.finditer(code)
            if not start <= m.start() <= end]


def _single_named_emit(path: Path, code: str) -> list[int]:
    """A workflow whose emit: block names one channel (nf-lang: omit the name when there is only one emit)."""
    found = []
    for workflow in re.finditer(r"^workflow\s+\w+\s*\{", code, re.M):
        body_start, body_end = workflow.end(), _block_end(code, workflow.end() - 1)
        emit = re.search(r"^\s*emit:\s*$", code[body_start:body_end], re.M)
        if not emit:
            continue
        block = code[body_start + emit.end():body_end]
        named = list(re.finditer(r"^\s*[A-Za-z_]\w*\s*=", block, re.M))
        if len(named) == 1:
            found.append(code[: body_start + emit.end() + named[0].start()].count("\n") + 2)
    return found


TRIPLE = '"' * 3
STRICT_RULES = [
    StrictRule("instanceof-ternary", "parenthesise a type test used as a condition: (x instanceof List) ? a : b "
               "(`List ?` reads as the nullable type List? and the whole file fails to parse), or use [x].flatten()",
               _only_in(".nf", _lines(r"\binstanceof\s+[A-Za-z_][\w.]*\s*\?")),
               ("wf.nf", "workflow W {\n    main:\n    ch.flatMap { _m, f -> f instanceof List ? f : [ f ] }\n}\n"),
               ("wf.nf", "workflow W {\n    main:\n    ch.flatMap { _m, f -> [ f ].flatten() }\n}\n")),
    StrictRule("when-section", "no process `when:` section (deprecated): decide in the workflow whether a process runs",
               _only_in(".nf", _lines(r"^\s*when:\s*$")),
               ("m.nf", f"process P {{\n    input:\n    val x\n\n    when:\n    task.ext.when == null || task.ext.when\n\n"
                        f"    script:\n    {TRIPLE}\n    true\n    {TRIPLE}\n}}\n"),
               ("m.nf", f"process P {{\n    input:\n    val x\n\n    script:\n    {TRIPLE}\n    true\n    {TRIPLE}\n}}\n")),
    StrictRule("params-outside-entry-workflow", "read params only in the entry workflow of main.nf; pass values to "
               "named workflows through take: and to processes as inputs (a step's options: ENPACT_CHECK's)",
               _params_outside_entry_workflow,
               ("wf.nf", "workflow W {\n    take:\n    ch\n\n    main:\n    ch.collectFile(storeDir: params.outdir)\n}\n"),
               ("main.nf", "workflow {\n    main:\n    W(channel.of(params.outdir))\n}\n")),
    StrictRule("single-named-emit", "a workflow with one emit leaves it unnamed (or emits more than one channel)",
               _only_in(".nf", _single_named_emit),
               ("wf.nf", "workflow W {\n    main:\n    P(ch)\n\n    emit:\n    out = P.out.x\n}\n"),
               ("wf.nf", "workflow W {\n    main:\n    P(ch)\n\n    emit:\n    x = P.out.x\n    y = P.out.y\n}\n")),
    StrictRule("manifest-author", "manifest.contributors (a list of maps) instead of the deprecated manifest.author",
               _only_in(".config", _lines(r"^\s*(manifest\.)?author\s*=")),
               ("n.config", "manifest {\n    author = 'me'\n}\n"),
               ("n.config", "manifest {\n    contributors = [ [ name: 'me', contribution: ['author'] ] ]\n}\n")),
    StrictRule("import", "no import declarations: use fully qualified class names", _lines(r"^\s*import\s"),
               ("m.nf", "import groovy.json.JsonOutput\n"), ("m.nf", "def f(x) { groovy.json.JsonOutput.toJson(x) }\n")),
    StrictRule("Channel-namespace", "channel.<factory> (lowercase namespace)", _lines(r"\bChannel\."),
               ("m.nf", "workflow {\n    main:\n    Channel.of(1)\n}\n"), ("m.nf", "workflow {\n    main:\n    channel.of(1)\n}\n")),
    StrictRule("implicit-it", "explicit closure parameters instead of `it`", _lines(r"\{\s*it\b|\bit\."),
               ("m.nf", "workflow {\n    main:\n    channel.of(1).map { it + 1 }\n}\n"),
               ("m.nf", "workflow {\n    main:\n    channel.of(1).map { x -> x + 1 }\n}\n")),
    StrictRule("loops", "each/collect instead of for/while loops", _lines(r"^\s*(for|while)\s*\("),
               ("m.nf", "def f(xs) {\n    for (x in xs) { println(x) }\n}\n"),
               ("m.nf", "def f(xs) {\n    xs.each { x -> println(x) }\n}\n")),
    StrictRule("switch", "if/else instead of switch", _lines(r"^\s*switch\s*\("),
               ("m.nf", "def f(x) {\n    switch (x) { default: return 1 }\n}\n"), ("m.nf", "def f(x) {\n    return 1\n}\n")),
    StrictRule("addParams", "pass values as inputs, not addParams", _lines(r"\baddParams\b"),
               ("m.nf", "include { P } from './p' addParams(x: 1)\n"), ("m.nf", "include { P } from './p'\n")),
    StrictRule("shell-section", "script: instead of shell:", _lines(r"^\s*shell:"),
               ("m.nf", "process P {\n    shell:\n    'true'\n}\n"), ("m.nf", "process P {\n    script:\n    'true'\n}\n")),
    StrictRule("class", "no class declarations", _lines(r"^\s*class\s"),
               ("m.nf", "class Helper {}\n"), ("m.nf", "def helper() { return 1 }\n")),
    StrictRule("config-statements", "config files allow only assignments, blocks and includes at the top level",
               _only_in(".config", _lines(r"^(def|if|try)\b")),
               ("n.config", "def x = 1\nparams.y = x\n"), ("n.config", "params.y = 1\n")),
]


def strict_problems(path: Path, text: str) -> list[str]:
    """Every strict-syntax rule this file breaks, as `file:line: rule: advice`."""
    code = strip_comments(text)
    return [f"{path}:{line}: {rule.name}: {rule.advice}" for rule in STRICT_RULES for line in rule.find(path, code)]


def test_pipeline_follows_the_strict_syntax():
    """No construct Nextflow's strict parser (the default from Nextflow 26.04) rejects or deprecates."""
    problems = []
    for path in nextflow_files():
        if path.suffix == ".test" or path.name == "nf-test.config":
            continue
        problems += strict_problems(path.relative_to(ROOT), path.read_text())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("rule", STRICT_RULES, ids=[r.name for r in STRICT_RULES])
def test_strict_rule_catches_its_planted_example(rule):
    name, bad = rule.bad
    found = [p for p in strict_problems(Path(name), bad) if f": {rule.name}: " in p]
    assert found, f"rule {rule.name} missed its planted example:\n{bad}"
    name, good = rule.good
    assert not strict_problems(Path(name), good), f"rule {rule.name}: the recommended form is flagged:\n{good}"


# --------------------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------------------

def test_schema_is_valid_json_schema_2020_12():
    from jsonschema import Draft202012Validator

    document = schema()
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert list(document["$defs"]) == SCHEMA_GROUPS
    assert [ref["$ref"] for ref in document["allOf"]] == [f"#/$defs/{g}" for g in SCHEMA_GROUPS]
    for name, spec in schema_properties().items():
        assert spec.get("type") in ("string", "integer", "number", "boolean"), f"{name}: type"
        assert spec.get("description"), f"{name}: description"
        if "default" in spec:
            assert not list(Draft202012Validator(spec).iter_errors(spec["default"])), f"{name}: default invalid"


def test_schema_validates_the_test_profile_and_rejects_bad_values():
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema())
    defaults = {k: v for k, v in config_params().items() if v is not None}
    assert not list(validator.iter_errors(defaults))
    for bad in ({"bins": 0}, {"precision": "fp64"}, {"snp_key": "SNP"}, {"loci_per_chunk": "50"},
                {"lin_alpha": 2}, {"model_type": "xg boost"}, {"model_hyperparameters": "channels"}):
        assert list(validator.iter_errors({**defaults, **bad})), f"{bad} accepted"


def test_schema_defaults_equal_nextflow_config():
    config = config_params()
    properties = schema_properties()
    assert set(config) == set(properties), (
        f"only in nextflow.config: {sorted(set(config) - set(properties))}; "
        f"only in the schema: {sorted(set(properties) - set(config))}")
    for name, value in config.items():
        spec = properties[name]
        if value is None:
            assert "default" not in spec, f"{name}: null in nextflow.config, but the schema has a default"
        else:
            assert "default" in spec, f"{name}: {value!r} in nextflow.config, no default in the schema"
            assert spec["default"] == value and type(spec["default"]) is type(value), (
                f"{name}: schema default {spec['default']!r} != nextflow.config {value!r}")


def test_path_parameters_use_file_path_format():
    properties = schema_properties()
    for name in ("fasta", "annotation", "expression", "vcf", "samples"):
        assert properties[name].get("format") == "file-path" and properties[name].get("exists") is True, name


# params.X in code; not file names such as pipeline_info/params.json
PARAM_USE = re.compile(r"(?<![\w/.'\"])params\.(?!json\b)([A-Za-z_]\w*)")


def strip_comments(text: str) -> str:
    """Groovy source with its // and /* */ comments removed; strings are respected and line numbers kept."""
    out, index, quote = [], 0, None
    while index < len(text):
        if quote:
            if text.startswith(quote, index):
                out.append(quote)
                index, quote = index + len(quote), None
            elif text[index] == "\\":
                out.append(text[index:index + 2])
                index += 2
            else:
                out.append(text[index])
                index += 1
        elif text.startswith("//", index):
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
        elif text.startswith("/*", index):
            end = text.find("*/", index + 2)
            end = len(text) if end < 0 else end + 2
            out.append("\n" * text.count("\n", index, end))
            index = end
        else:
            quote = next((q for q in ('"""', "'''", '"', "'") if text.startswith(q, index)), None)
            token = quote or text[index]
            out.append(token)
            index += len(token)
    return "".join(out)


def used_params() -> dict[str, set[str]]:
    """params.X referenced anywhere in the pipeline's .nf/.config files, and params set in config params blocks."""
    used: dict[str, set[str]] = {}
    for path in nextflow_files():
        if path.suffix == ".test":
            continue
        text = path.read_text()
        names = set(PARAM_USE.findall(strip_comments(text)))
        for block in re.finditer(r"^\s*params\s*\{(.*?)^\s*\}", text, re.S | re.M):
            names |= set(re.findall(r"^\s*([A-Za-z_]\w*)\s*=", block.group(1), re.M))
        for name in names:
            used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return used


def test_every_param_used_is_in_the_schema():
    properties = schema_properties()
    unknown = {name: sorted(files) for name, files in used_params().items() if name not in properties}
    assert not unknown, f"params used but not defined in nextflow_schema.json: {unknown}"


def test_every_contract_parameter_is_in_the_schema():
    """docs/cli-contract.md's parameter list: every name is in the schema, simple defaults agree."""
    text = (ROOT / "docs" / "cli-contract.md").read_text()
    section = text[text.index("## Parameters"):]
    properties = schema_properties()
    problems = []
    for line in section.splitlines():
        if not line.startswith("- "):
            continue
        for match in re.finditer(r"`([a-z][a-z0-9_]*)`(?:\s*\(([^)]*)\))?", line):
            name, note = match.group(1), match.group(2)
            if name == "max_cpus":
                continue  # documented as replaced by resourceLimits
            if name not in properties:
                problems.append(f"{name}: not in the schema")
                continue
            if note and re.fullmatch(r"[\w.\-]+", note.strip()) and note.strip() not in ("null", "comma-separated"):
                want = note.strip()
                got = properties[name].get("default")
                if str(got).lower() != want.lower():
                    problems.append(f"{name}: contract default {want!r}, schema default {got!r}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------------------

def base_labels() -> set[str]:
    """Labels conf/base.config defines."""
    return set(re.findall(r"withLabel:\s*'?([A-Za-z_]\w*)'?", (ROOT / "conf" / "base.config").read_text()))


VERSION_OUTPUT = re.compile(r"""^tuple val\("\$\{task\.process\}"\), val\('(\w+)'\), eval\('enpact --version-of (\w+)'\), """
                            r"""topic: versions, emit: versions_(\w+)$""")


@pytest.mark.parametrize("module", MODULES, ids=[m.parent.name for m in MODULES])
def test_process_conventions(module):
    process = parse_process(module)
    text = module.read_text()
    assert process.name == module.parent.name.upper(), f"{module}: process {process.name} in {module.parent.name}/"
    assert process.has_tag, f"{process.name}: no tag"
    assert process.labels and set(process.labels) <= base_labels(), f"{process.name}: labels {process.labels}"
    for section in ("input", "output", "script", "stub"):
        assert process.sections.get(section, "").strip(), f"{process.name}: no {section}: section"
    assert "when" not in process.sections, f"{process.name}: no when: section (deprecated by the strict syntax)"
    assert re.search(r"task\.ext\.args", process.sections["script"]), f"{process.name}: no task.ext.args"
    assert not PARAM_USE.search(strip_comments(text)), f"{process.name}: modules take options as inputs, not params"
    assert "tuple val(meta)" in process.sections["input"], f"{process.name}: first input must be tuple val(meta), ..."
    outputs = process.outputs
    assert outputs, f"{process.name}: no outputs"
    for output in outputs:
        assert output.emit, f"{process.name}: output without a named emit: {output.line}"
    emits = [o.emit for o in outputs]
    assert len(emits) == len(set(emits)), f"{process.name}: duplicate emit names {emits}"
    # software versions through the `versions` topic, each read by the enpact that runs the step
    versions = [VERSION_OUTPUT.match(o.line) for o in outputs if o.emit.startswith("versions")]
    assert all(versions), f"{process.name}: versions outputs must be {VERSION_OUTPUT.pattern}"
    tools = [m.group(1) for m in versions]
    assert all(m.group(1) == m.group(2) == m.group(3) for m in versions), f"{process.name}: versions outputs disagree"
    want = ["enpact", "python"] + (["torch"] if "process_gpu" in process.labels else [])
    assert tools == want, f"{process.name}: versions of {tools}, expected {want}"
    assert "versions.yml" not in text, f"{process.name}: versions go through the topic channel, not versions.yml"
    for output in outputs:
        if not output.emit.startswith("versions"):
            assert output.patterns, f"{process.name}: output without a path: {output.line}"
            assert output.line.startswith("tuple val(meta)"), f"{process.name}: outputs are tuple val(meta), path(...)"


# --------------------------------------------------------------------------------------------------------------
# Options: each step's from ENPACT_CHECK, ext.args left to users
# --------------------------------------------------------------------------------------------------------------

def step_of_module(module: Path) -> str:
    """modules/enpact_merge_features/main.nf -> merge-features."""
    return module.parent.name.removeprefix("enpact_").replace("_", "-")


def has_options(config_type: type) -> bool:
    """Whether run parameters set any command-line option of a step (what ENPACT_CHECK's options line can hold)."""
    import dataclasses

    from enpact.options import option_fields

    return any(has_options(kind.base) if dataclasses.is_dataclass(kind.base) and not kind.many
               else spec.param is not None and spec.role is None and spec.cli
               for _f, kind, spec in option_fields(config_type))


def steps_with_options() -> set[str]:
    from enpact.steps import STEPS

    return {name for name, step in STEPS.items() if step.task and has_options(step.config)}


def module_options_problems(name: str, text: str, takes: bool) -> list[str]:
    """How a module's text breaks the options rule: the options of its step (`takes`) as the last input,
    `val(options)`, on the command line before the user's ${args}; no options input for a step without any."""
    process_text = strip_comments(text)
    inputs = process_text[process_text.index("input:"):process_text.index("output:")]
    declared = [line.strip() for line in inputs.splitlines() if re.match(r"\s*(tuple|path|val)\b", line)]
    script = process_text[process_text.index("script:"):process_text.index("stub:")]
    if not takes:
        return [f"{name}: its step has no options; it takes none"] if "val(options)" in inputs else []
    problems = []
    if not declared or declared[-1] != "val(options)":
        problems.append(f"{name}: its last input must be val(options) (its step's options from ENPACT_CHECK)")
    if "${options}" not in script:
        problems.append(f"{name}: ${{options}} is not on its command line")
    elif "${args}" in script and script.index("${options}") > script.index("${args}"):
        problems.append(f"{name}: ${{options}} must come before ${{args}} (the user's ext.args can then override)")
    return problems


def test_every_step_with_options_has_some():
    assert {"loci", "predict", "train", "personalize", "linearize", "database", "twas"} <= steps_with_options()
    assert not {"merge-features", "merge"} & steps_with_options()


@pytest.mark.parametrize("module", MODULES, ids=[m.parent.name for m in MODULES])
def test_modules_take_their_steps_options(module):
    takes = step_of_module(module) in steps_with_options()
    assert not module_options_problems(module.parent.name, module.read_text(), takes)


def test_options_rule_catches_a_module_that_drops_them():
    text = (ROOT / "modules" / "enpact_linearize" / "main.nf").read_text()
    assert not module_options_problems("linearize", text, True)
    dropped = text.replace("        ${options} \\\\\n", "")
    assert any("is not on its command line" in p for p in module_options_problems("linearize", dropped, True))
    late = dropped.replace("        ${args} \\\\\n", "        ${args} \\\\\n        ${options} \\\\\n")
    assert any("before ${args}" in p for p in module_options_problems("linearize", late, True))
    undeclared = text.replace("    val(options)", "    val(other)")
    assert any("last input" in p for p in module_options_problems("linearize", undeclared, True))


def ext_args_flags(text: str) -> list[str]:
    """The `--flag`s set in ext.args of a config file (ours would bypass the options ENPACT_CHECK derives)."""
    code = strip_comments(text)
    found = []
    for match in re.finditer(r"\bext\.args\s*=\s*", code):
        start = match.end()
        end = _block_end(code, start) + 1 if code[start] == "{" else code.find("\n", start)
        line = code[:start].count("\n") + 1
        found += [f"line {line}: {flag}" for flag in re.findall(r"--[A-Za-z][\w-]*", code[start:end])]
    return found


def test_modules_config_sets_no_option_of_ours():
    text = (ROOT / "conf" / "modules.config").read_text()
    assert not ext_args_flags(text), ("conf/modules.config sets options in ext.args (each step's come from "
                                      f"ENPACT_CHECK; ext.args is the user's): {ext_args_flags(text)}")
    planted = ("process {\n    withName: 'ENPACT_LINEARIZE' {\n        ext.args = { [\n"
               "            \"--maf ${params.lin_maf}\",\n        ].join(' ') }\n    }\n}\n")
    assert ext_args_flags(planted) == ["line 3: --maf"]
    assert ext_args_flags("process { withName: 'X' { ext.args = '--min-snps 3' } }") == ["line 1: --min-snps"]
    assert not ext_args_flags("process {\n    // ext.args = '--maf 0.05' (a user's)\n    ext.prefix = { meta.id }\n}\n")


def options_wiring_problems(texts: dict[str, str]) -> tuple[list[str], set[str]]:
    """Module calls given another step's options (`ch_options.map { options -> options.<step> }` names the module's
    own step), and the steps whose modules are given theirs, in workflow files {name: text}."""
    modules = {parse_process(m).name: step_of_module(m) for m in MODULES}
    problems, seen = [], set()
    for name, text in texts.items():
        code = strip_comments(text)
        included = re.findall(r"include\s*\{\s*(\w+)\s+as\s+(\w+)\s*\}", code)
        aliases = {alias: process for process, alias in included}
        for match in re.finditer(r"\boptions\s*->\s*options(?:\.(\w+)|\['([\w-]+)'\])", code):
            step = match.group(1) or match.group(2)
            call = re.findall(r"\b(ENPACT_[A-Z_]+)\s*\(", code[:match.start()])[-1]
            want = modules[aliases.get(call, call)]
            seen.add(want)
            if step != want:
                problems.append(f"{name}: {call} is given the options of {step}, not {want}")
    return problems, seen


def workflow_texts() -> dict[str, str]:
    paths = [ROOT / "workflows" / "enpact.nf", *sorted((ROOT / "subworkflows").glob("*.nf"))]
    return {str(path.relative_to(ROOT)): path.read_text() for path in paths}


def test_workflows_give_each_module_its_own_steps_options():
    problems, seen = options_wiring_problems(workflow_texts())
    assert not problems, "\n".join(problems)
    assert seen == steps_with_options(), f"no options given to the modules of {sorted(steps_with_options() - seen)}"
    texts = workflow_texts()
    planted = texts["subworkflows/personalize.nf"].replace("options.personalize", "options.predict")
    texts["subworkflows/personalize.nf"] = planted
    assert options_wiring_problems(texts)[0] == ["subworkflows/personalize.nf: ENPACT_PERSONALIZE is given the options "
                                                 "of predict, not personalize"]


def test_the_check_stub_writes_an_options_file_for_every_step():
    from enpact.steps import STEPS

    stub = parse_process(ROOT / "modules" / "enpact_check" / "main.nf").sections["stub"]
    listed = re.search(r"def steps = \[([^\]]*)\]", stub).group(1)
    assert sorted(re.findall(r"'([\w-]+)'", listed)) == sorted(name for name, step in STEPS.items() if step.task)


def test_module_nf_tests_give_the_test_profiles_options():
    """Each module's nf-test gives its options input the line `enpact check` writes for -profile test."""
    from enpact.params import resolve_params
    from enpact.steps import task_options

    options = task_options(resolve_params(None, {"outdir": "results"}, "single"))
    problems = []
    for module in MODULES:
        process = parse_process(module)
        if process.input_names[-1:] != ["options"]:
            continue
        declared = [line for line in process.sections["input"].splitlines() if re.match(r"\s*(tuple|path|val)\b", line)]
        index = len(declared) - 1
        text = (module.parent / "tests" / "main.nf.test").read_text()
        for test in re.split(r"\n\s*test\(", text)[1:]:
            when = test[re.search(r"\n\s*when\s*\{", test).start():]
            given = re.findall(rf"\binput\[{index}\]\s*=\s*'([^']*)'", when)
            if given != [options[step_of_module(module)]]:
                problems.append(f"{module.parent.name}: test '{test.split(chr(34))[1]}' gives options {given}, "
                                f"-profile test gives {options[step_of_module(module)]!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module", MODULES, ids=[m.parent.name for m in MODULES])
def test_gpu_label_only_on_predictor_processes(module):
    process = parse_process(module)
    if process.name in GPU_PROCESSES:
        assert "process_gpu" in process.labels, f"{process.name} must carry label 'process_gpu'"
    else:
        assert "process_gpu" not in process.labels, f"{process.name} is not a predictor step"


def test_gpu_label_settings():
    base = (ROOT / "conf" / "base.config").read_text()
    block = base[base.index("withLabel: process_gpu"):]
    block = block[: block.index("withLabel: error_ignore")]
    for needle in ("accelerator", "params.use_gpu.toString() == 'true' ? 1", "'--nv'", "'--gpus all'", "params.gpu_container",
                   "params.gpu_queue"):
        assert needle in block, f"process_gpu label: {needle} missing"
    assert "(130..145) + 104 + 175" in base and "resourceLimits" in base
    for label in ("process_single", "process_low", "process_medium", "process_high", "process_gpu"):
        assert label in base_labels(), label


def boolean_param_problems(name: str, text: str, booleans: set[str]) -> list[str]:
    """Boolean parameters read as conditions: a command-line `--x false` is the text "false" under the strict
    parser, which Groovy takes for true; compare the text (`params.x.toString() == 'true'`)."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("//")[0]
        for match in re.finditer(r"params\.(\w+)\b(?!\.toString\(\))(?!\s*=[^=])", code):
            if match.group(1) in booleans:
                problems.append(f"{name}:{number}: params.{match.group(1)} read as a boolean: compare "
                                f"params.{match.group(1)}.toString() == 'true'")
    return problems


def schema_booleans() -> set[str]:
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, dict) and value.get("type") == "boolean":
                    found.add(key)
                walk(value)

    walk(json.loads((ROOT / "nextflow_schema.json").read_text()))
    return found - {"help"}   # --help NAME is text; main.nf reads it as such


def test_boolean_parameters_are_read_as_text_in_configs():
    booleans = schema_booleans()
    problems = []
    for path in [ROOT / "nextflow.config", *sorted((ROOT / "conf").glob("*.config"))]:
        problems += boolean_param_problems(path.name, path.read_text(), booleans)
    assert not problems, "\n".join(problems)
    planted = "ext.args = { params.allow_unphased ? '--allow-unphased' : '' }"
    assert boolean_param_problems("planted", planted, booleans)
    assert not boolean_param_problems("fine", "params.use_gpu = true\nx = params.use_gpu.toString() == 'true'", booleans)


def includes(path: Path) -> list[tuple[list[str], Path]]:
    found = []
    for match in re.finditer(r"^include\s*\{([^}]*)\}\s*from\s*'([^']+)'", path.read_text(), re.M):
        names = [n.strip().split(" as ")[0].strip() for n in match.group(1).split(";") if n.strip()]
        source = match.group(2)
        if source.startswith("plugin/"):
            continue
        target = (path.parent / source).resolve()
        found.append((names, target if target.suffix == ".nf" else target.with_suffix(".nf")))
    return found


def test_includes_resolve_and_every_module_is_used():
    used = set()
    for path in [ROOT / "main.nf", *sorted(ROOT.glob("workflows/*.nf")), *sorted(ROOT.glob("subworkflows/*.nf"))]:
        for names, target in includes(path):
            assert target.exists(), f"{path.relative_to(ROOT)}: include from {target} (missing)"
            text = target.read_text()
            for name in names:
                assert re.search(rf"^(process|workflow)\s+{name}\s*\{{", text, re.M), f"{name} not defined in {target}"
            used.add(target)
    unused = [m.relative_to(ROOT) for m in MODULES if m.resolve() not in used]
    assert not unused, f"modules not used by any workflow: {unused}"


def test_modules_config_selectors_name_real_processes():
    names = {parse_process(m).name for m in MODULES}
    workflows = [ROOT / "main.nf", *(ROOT / "workflows").glob("*.nf"), *(ROOT / "subworkflows").glob("*.nf")]
    aliases = {alias for path in workflows
               for process, alias in re.findall(r"include\s*\{\s*(\w+)\s+as\s+(\w+)\s*\}", path.read_text())
               if process in names}
    names |= aliases   # `include { ENPACT_COVARIANCE as ENPACT_JOINT_COVARIANCE }`: selected by its alias
    names |= set(re.findall(r"^process\s+(\w+)", (ROOT / "main.nf").read_text(), re.M))   # SOFTWARE_VERSIONS
    text = (ROOT / "conf" / "modules.config").read_text()
    selectors = re.findall(r"withName:\s*'([^']+)'", text)
    assert selectors
    for selector in selectors:
        assert any(re.fullmatch(selector, n) for n in names), f"conf/modules.config: withName '{selector}' matches no process"


def test_sorted_gathers_in_the_workflow():
    """Lists that feed one task are sorted (input order is part of the task hash: -resume)."""
    text = (ROOT / "workflows" / "enpact.nf").read_text() + (ROOT / "subworkflows" / "personalize.nf").read_text() \
        + (ROOT / "subworkflows" / "linearize.nf").read_text()
    assert ".collect()" not in text, "use toSortedList instead of collect() before a gather"
    assert "groupKey(" in text and ".groupTuple()" in text and "toSorted" in text
    assert text.count("toSortedList") >= 6


# --------------------------------------------------------------------------------------------------------------
# Configuration, containers, nf-test
# --------------------------------------------------------------------------------------------------------------

def test_profiles_reports_plugins_manifest():
    text = (ROOT / "nextflow.config").read_text()
    profiles = text[text.index("profiles {"):]
    for profile in PROFILES:
        assert re.search(rf"^\s*{profile}\s*\{{", profiles, re.M), f"profile {profile} missing"
    for report in ("timeline", "report", "trace", "dag"):
        assert re.search(rf"^{report}\s*\{{[^}}]*\$\{{params\.outdir\}}/pipeline_info/", text, re.M | re.S), report
    assert re.search(r"id 'nf-schema@[\d.]+'", text)
    assert "manifest {" in text and "version         = '0.1.0'" in text
    version = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    params = config_params()
    assert params["cpu_container"].endswith(f":{version}") and params["gpu_container"].endswith(f":{version}-gpu")


def test_test_profile_points_at_bundled_demo_data():
    text = (ROOT / "conf" / "test.config").read_text()
    names = re.findall(r'"\$\{projectDir\}/([^"]+)"', text)
    assert {"fasta", "annotation", "expression", "vcf", "gwas", "weights"} <= set(re.findall(r"^\s*(\w+)\s*=\s*\"\$\{projectDir\}", text, re.M))
    demo = ROOT / "src" / "enpact" / "data" / "demo"
    if not (demo / "genome.fa").exists():
        pytest.skip("demo data not generated yet")
    for name in names:
        assert (ROOT / name).exists(), f"conf/test.config: {name} does not exist"
    assert re.search(r"loci_per_chunk\s*=\s*\d+", text)


def test_tower_yml_lists_reports():
    text = (ROOT / "tower.yml").read_text()
    for pattern in ("report/index.html", "twas/*.csv", "metrics.json", "pipeline_info/"):
        assert pattern in text, f"tower.yml: {pattern}"


def test_dockerfiles():
    cpu = (ROOT / "containers" / "Dockerfile").read_text()
    gpu = (ROOT / "containers" / "Dockerfile.gpu").read_text()
    assert re.search(r"^FROM python:3\.11-slim", cpu, re.M)
    for text in (cpu, gpu):
        assert "procps" in text and "torch==2.13.0" in text and "-r requirements.txt" in text
        assert "--no-deps" in text and "org.opencontainers.image" in text
    assert "download.pytorch.org/whl/cpu" in cpu
    assert re.search(r"download\.pytorch\.org/whl/cu\d+", gpu)


def nf_test_problems(text: str, process_name: str) -> list[str]:
    """What makes a module's nf-test unable to fail when the module's outputs are wrong."""
    problems = []
    if f'process "{process_name}"' not in text or 'script "../main.nf"' not in text:
        problems.append("must test its own process")
    if "snapshot(" in text:
        problems.append("snapshots are written on the first run and then match themselves: assert concrete content")
    tests = re.split(r"\n    test\(", text)[1:]
    if not tests or not any('options "-stub"' in test for test in tests):
        problems.append("needs a stub test")
    for test in tests:
        name = test.split('"')[1]
        asserts = re.findall(r"\{ assert (.+?) \}(?:,|\n)", test)
        concrete = [a for a in asserts if a not in ("process.success", "process.failed")]
        if not concrete:
            problems.append(f"test '{name}' asserts only that the process ran")
    return problems


def nf_test_input_problems(test_text: str, module: Path) -> list[str]:
    """Tests whose `input[i] = ...` lines do not give the process exactly its inputs (nf-test then fails at run
    time: too few or too many input channels)."""
    declared = [line for line in parse_process(module).sections["input"].splitlines()
                if re.match(r"\s*(tuple|path|val)\b", line)]
    problems = []
    for test in re.split(r"\n\s*test\(", test_text)[1:]:
        when = re.search(r"\n\s*when\s*\{", test)   # a setup block before it gives the inputs of other processes
        given = sorted({int(i) for i in re.findall(r"\binput\[(\d+)\]\s*=", test[when.start() if when else 0:])})
        if given != list(range(len(declared))):
            problems.append(f"test '{test.split(chr(34))[1]}' sets input{given}, the process has {len(declared)} inputs")
    return problems


@pytest.mark.parametrize("module", MODULES, ids=[m.parent.name for m in MODULES])
def test_module_nf_tests_give_every_input(module):
    test = module.parent / "tests" / "main.nf.test"
    assert not nf_test_input_problems(test.read_text(), module)


def test_nf_test_input_check_sees_an_extra_input():
    module = ROOT / "modules" / "enpact_linearize" / "main.nf"
    text = (module.parent / "tests" / "main.nf.test").read_text()
    extra = text.replace("input[1] = ", "input[9] = [ [id: 'x'], [] ]\n                input[1] = ", 1)
    assert nf_test_input_problems(extra, module)


@pytest.mark.parametrize("module", MODULES, ids=[m.parent.name for m in MODULES])
def test_module_nf_test(module):
    process = parse_process(module)
    test = module.parent / "tests" / "main.nf.test"
    assert test.exists(), f"{test.relative_to(ROOT)} missing"
    assert not nf_test_problems(test.read_text(), process.name), nf_test_problems(test.read_text(), process.name)
    assert (module.parent / "meta.yml").exists(), "meta.yml missing"


def meta_yml_problems(module: Path, meta_text: str) -> list[str]:
    """Where a module's meta.yml names other inputs (in order) or emits than its process declares."""
    process = parse_process(module)
    meta = yaml.safe_load(meta_text)
    inputs = re.findall(r"(?:val|path)\((\w+)", process.sections["input"])
    emits = [o.emit for o in process.outputs if not o.emit.startswith("versions")]
    listed = [next(iter(entry)) for entry in meta.get("output", []) if next(iter(entry)) != "versions"]
    problems = []
    if meta.get("input") != inputs:
        problems.append(f"{module.parent.name}/meta.yml: input {meta.get('input')}, the process takes {inputs}")
    if listed != emits:
        problems.append(f"{module.parent.name}/meta.yml: output {listed}, the process emits {emits}")
    return problems


@pytest.mark.parametrize("module", MODULES, ids=[m.parent.name for m in MODULES])
def test_meta_yml_lists_the_process_inputs_and_outputs(module):
    assert not meta_yml_problems(module, (module.parent / "meta.yml").read_text())


def test_meta_yml_check_sees_a_stale_input():
    module = ROOT / "modules" / "enpact_merge" / "main.nf"
    stale = (module.parent / "meta.yml").read_text().replace("input: [meta, stores, plan]", "input: [meta, stores]")
    assert meta_yml_problems(module, stale)


def test_nf_test_check_sees_a_test_that_cannot_fail():
    text = (ROOT / "modules/enpact_merge/tests/main.nf.test").read_text()
    assert not nf_test_problems(text, "ENPACT_MERGE")
    weak = re.sub(r"\{ assert (?!process\.success).+? \},?\n", "", text)
    assert any("asserts only that the process ran" in p for p in nf_test_problems(weak, "ENPACT_MERGE"))
    snap = text.replace("{ assert process.success },", "{ assert process.success },\n{ assert snapshot(process.out).match() },")
    assert any("snapshots" in p for p in nf_test_problems(snap, "ENPACT_MERGE"))


def test_pipeline_nf_test():
    """The pipeline test compares Nextflow's published results with the values `enpact run` writes."""
    text = (ROOT / "tests" / "nextflow" / "default.nf.test").read_text()
    assert "nextflow_pipeline" in text and 'script "../../main.nf"' in text and "workflow.success" in text
    assert "tests/nextflow/demo_values.py" in text and "'compare'" in text and "snapshot(" not in text
    config = (ROOT / "nf-test.config").read_text()
    assert 'configFile "tests/nextflow/nextflow.config"' in config


def test_staged_directories_cannot_collide():
    """A checkpoint directory of any name (even `model`) is staged apart from the EnPACT model directory."""
    for name in ("enpact_predict", "enpact_personalize"):
        inputs = parse_process(ROOT / "modules" / name / "main.nf").sections["input"]
        assert "path(weights_dir, stageAs: 'weights/*')" in inputs, name
    inputs = parse_process(ROOT / "modules" / "enpact_personalize" / "main.nf").sections["input"]
    assert "path(model, stageAs: 'enpact_model/*')" in inputs
