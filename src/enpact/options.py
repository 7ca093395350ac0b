"""Step options, defined once: the fields of a step's configuration carry their flag, run parameter, help and file
role, and everything else is derived from them.

From one configuration type (enpact.steps) come:
- the step's command line (`add_arguments`, `from_arguments`): `enpact <step> --help` lists exactly the fields;
- the configuration `enpact run` builds from a parameter file (`from_params`);
- the options a Nextflow task receives (`task_arguments`): `enpact check` writes them per step from the run's
  parameters, and each module passes its own step's to its command line, so a task's hash changes only when its
  own step's options change;
- the parameter names in error messages (`parameter_names`).
Fields that name files (`role`) are given by the engine (the runner's layout, the files a task stages); fields
without a `param` are per-task values (a context, a part) or command-line-only options.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType, UnionType
from typing import Any

UNSET = object()   # a parameter that leaves a field at its default


@dataclass(frozen=True)
class Option:
    """What a configuration field is to users: its flags, help, run parameter and how text becomes its value."""

    help: str = ""
    flags: tuple[str, ...] = ()            # default: --field-name (--no-field-name for a flag that defaults on)
    param: str | None = None               # the run parameter (nextflow_schema.json) that sets it
    value: Callable[[Any], Any] | None = None        # parameter value -> field value, when not the same
    when: Callable[[Mapping[str, Any]], bool] | None = None   # the parameter applies only when this holds
    role: str | None = None                # input, output or prefix-output: names a file (given by the engine)
    choices: tuple[Any, ...] | None = None
    metavar: str | tuple[str, ...] | None = None
    parse: Callable[[str], Any] | None = None        # one command-line word (or parameter text) -> value
    render: Callable[[Any], str] | None = None       # value -> one command-line word, for parse's values
    nargs: int | str | None = None         # words per flag for a tuple field (default: one or more; one
                                           # when parse and render read and write the whole tuple)
    append: bool = False                   # the flag repeats, each time with nargs words
    exclusive: str | None = None           # fields with the same name cannot be given together
    cli: bool = True                       # False: not a flag (derived from another field by the step)
    fingerprint: bool = True               # False: does not change what the step writes (progress bars)


def option(default: Any = dataclasses.MISSING, **metadata: Any) -> Any:
    """A configuration field with its Option (keywords as Option's)."""
    spec = Option(**metadata)
    extra = {"role": spec.role} if spec.role else {}
    if not spec.fingerprint:
        extra["fingerprint"] = False
    return field(default=default, metadata={"option": spec, **extra})


def option_of(f: dataclasses.Field) -> Option:
    """The Option of a field (a plain field has an empty one)."""
    return f.metadata.get("option") or Option(role=f.metadata.get("role"))


@dataclass(frozen=True)
class Kind:
    """A field's type, as the command line sees it."""

    base: Any          # int, float, str, Path, bool, a configuration type, or tuple (pairs) / Any
    optional: bool     # None is allowed
    many: bool         # tuple[base, ...]


def kind_of(annotation: Any) -> Kind:
    """Decompose a field annotation (X, X | None, tuple[X, ...], tuple[X, ...] | None)."""
    optional = False
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        members = [a for a in typing.get_args(annotation) if a is not NoneType]
        optional, annotation = True, members[0]
    if typing.get_origin(annotation) is tuple:
        inner = typing.get_args(annotation)[0]
        return Kind(typing.get_origin(inner) or inner, optional, True)
    return Kind(annotation, optional, False)


def option_fields(config_type: type) -> list[tuple[dataclasses.Field, Kind, Option]]:
    """The fields of a configuration type with their kinds and options."""
    hints = typing.get_type_hints(config_type)
    return [(f, kind_of(hints[f.name]), option_of(f)) for f in dataclasses.fields(config_type)]


def _nested(kind: Kind) -> bool:
    return not kind.many and dataclasses.is_dataclass(kind.base)


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING


def _one_word(spec: Option) -> bool:
    """A tuple field written as one word (parse reads it whole, render writes it whole: a comma list, pairs)."""
    return spec.parse is not None and spec.render is not None and spec.nargs is None


def flags_of(f: dataclasses.Field, kind: Kind, spec: Option, underscore: bool = False) -> list[str]:
    """The flags of a field, with the underscore spellings of MetaXcan's tools when asked."""
    name = f.name.replace("_", "-")
    flags = list(spec.flags) or [f"--no-{name}" if kind.base is bool and _default(f) is True else f"--{name}"]
    if underscore:
        flags += [u for u in (flag.replace("-", "_").replace("__", "--", 1) for flag in flags) if u not in flags]
    return flags


# ----------------------------------------------------------------------------------------------------------
# argparse types


def existing_file(value: str) -> Path:
    """argparse type: a path that must exist (checked at parse time, reported as one line)."""
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"file not found: {value}")
    return path


def comma_list(value: str) -> list[str]:
    """argparse type: a comma-separated list, empty items dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def render_comma_list(values: Sequence[str]) -> str:
    """comma_list's inverse."""
    return ",".join(values)


# ----------------------------------------------------------------------------------------------------------
# the command line


def add_arguments(parser: argparse.ArgumentParser, config_type: type) -> None:
    """One flag per field of the configuration (a nested configuration's fields in a group of their own)."""
    underscore = bool(getattr(config_type, "UNDERSCORE_FLAGS", False))
    groups: dict[str, Any] = {}
    for f, kind, spec in option_fields(config_type):
        if _nested(kind):
            add_arguments(parser.add_argument_group(kind.base.__name__.removesuffix("Config").lower()), kind.base)
            continue
        if not spec.cli:
            continue
        target: Any = parser
        if spec.exclusive:
            if spec.exclusive not in groups:
                groups[spec.exclusive] = parser.add_mutually_exclusive_group()
            target = groups[spec.exclusive]
        flags = flags_of(f, kind, spec, underscore)
        default = _default(f)
        source = f"parameter {spec.param}" if spec.param and spec.value is None else None
        text = "; ".join(t for t in (spec.help, source) if t)   # where `enpact run` and the pipeline take it from
        arguments: dict[str, Any] = {"dest": f.name, "help": text or None}
        if kind.base is bool and not kind.many:
            arguments["action"] = "store_false" if default is True else "store_true"
            target.add_argument(*flags, **arguments)
            continue
        if kind.many and not _one_word(spec):
            arguments["nargs"] = spec.nargs or "+"
        if spec.append:
            arguments["action"] = "append"
        parse = spec.parse or (existing_file if spec.role == "input" and kind.base is Path else
                               kind.base if kind.base in (int, float, Path) else None)
        if parse is not None:
            arguments["type"] = parse
        arguments.update(required=default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
                         choices=spec.choices, metavar=spec.metavar)
        if default is not dataclasses.MISSING:
            arguments["default"] = [] if spec.append else default
        target.add_argument(*flags, **{k: v for k, v in arguments.items() if v is not None})


def from_arguments(config_type: type, namespace: argparse.Namespace) -> Any:
    """The configuration the parsed arguments describe (`cli_values` of the type adjusts derived fields)."""
    values: dict[str, Any] = {}
    for f, kind, spec in option_fields(config_type):
        if _nested(kind):
            values[f.name] = from_arguments(kind.base, namespace)
        elif spec.cli:
            value = getattr(namespace, f.name)
            values[f.name] = tuple(value) if kind.many and isinstance(value, list) else value
    adjust = getattr(config_type, "cli_values", None)
    return config_type(**(adjust(values) if adjust else values))


# ----------------------------------------------------------------------------------------------------------
# run parameters


def _convert(raw: Any, kind: Kind, spec: Option) -> Any:
    """A parameter's value as the field's type."""
    if spec.parse is not None and isinstance(raw, str):
        raw = spec.parse(raw)
    if kind.many:
        return tuple(raw)
    if kind.base is bool:
        return raw.lower() == "true" if isinstance(raw, str) else bool(raw)
    return kind.base(raw) if kind.base in (int, float, str, Path) else raw


def param_value(f: dataclasses.Field, kind: Kind, spec: Option, params: Mapping[str, Any]) -> Any:
    """The field's value from the run parameters; UNSET where no parameter sets it (its default applies)."""
    if spec.param is None or (spec.when is not None and not spec.when(params)):
        return UNSET
    raw = params.get(spec.param)
    if spec.value is not None:
        return spec.value(raw)
    if raw is None or raw == "":
        return None if kind.optional else UNSET
    return _convert(raw, kind, spec)


def from_params(config_type: type, params: Mapping[str, Any], **given: Any) -> Any:
    """The configuration of a step from the run parameters; `given`: the fields the engine sets (files, chunks)."""
    values = dict(given)
    for f, kind, spec in option_fields(config_type):
        if f.name in values:
            continue
        if _nested(kind):
            values[f.name] = from_params(kind.base, params)
            continue
        value = param_value(f, kind, spec, params)
        if value is not UNSET:
            values[f.name] = value
    return config_type(**values)


def task_arguments(config_type: type, params: Mapping[str, Any]) -> list[str]:
    """The command-line words of the options the run parameters set, files excepted (a task stages those)."""
    words: list[str] = []
    for f, kind, spec in option_fields(config_type):
        if _nested(kind):
            words += task_arguments(kind.base, params)
            continue
        if spec.role or not spec.cli:
            continue
        value = param_value(f, kind, spec, params)
        if value is UNSET or value is None:
            continue
        flag = flags_of(f, kind, spec)[0]
        if kind.base is bool and not kind.many:
            words += [flag] if value != _default(f) else []
        elif kind.many and not _one_word(spec):
            words += [flag, *(spec.render(v) if spec.render else str(v) for v in value)]
        else:
            words += [flag, spec.render(value) if spec.render else str(value)]
    return words


def command_text(words: Sequence[str]) -> str:
    """Words as one shell-quoted line."""
    return " ".join(shlex.quote(w) for w in words)


def parameter_names(config_type: type) -> dict[str, str]:
    """Each flag of a configuration -> how a parameter file sets it ('lin_maf', 'allow_unphased: true')."""
    names: dict[str, str] = {}
    for f, kind, spec in option_fields(config_type):
        if _nested(kind):
            names.update(parameter_names(kind.base))
        elif spec.param is not None:
            flag_like = kind.base is bool and spec.value is None
            for flag in flags_of(f, kind, spec, bool(getattr(config_type, "UNDERSCORE_FLAGS", False))):
                names[flag] = f"{spec.param}: true" if flag_like else spec.param
    return names
