"""Readable logs: a repeated warning once, floats rounded, progress bars only on a terminal.

`enpact.cli.configure_logging` installs `RepeatedWarnings` (a filter) and `RoundingFormatter` on its stderr
handler:

- A WARNING or ERROR whose format string (`record.msg`) was already logged is held back; `flush()` (called at
  the end of a command, and at exit) writes one line per held-back template, `N more like: ...`, with the
  arguments that varied shown as a range (`702..872`) or `...`. Per-chunk warnings of `enpact run` (the steps
  run in one process) are therefore read once. Other handlers (pytest's caplog, say) still see every record.
- Floats formatted with a bare `%s`/`%r` are rounded to 4 significant digits (`r=0.9374`, not
  `r=0.9374121976304335`); an explicit precision (`%.1f`, `%g`) is left as written.

`progress_bar(iterable, **tqdm_options)` is tqdm that draws nothing when stderr is not a terminal, so that logs
redirected to a file hold no progress-bar frames. (Not named `progress`: the functions that draw bars take a
`progress: bool` argument.)
"""

from __future__ import annotations

import atexit
import copy
import logging
import math
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any

SIGNIFICANT_DIGITS = 4

# one %-conversion of a logging format string (printf-style, as logging uses it)
_SPEC = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?(?P<flags>[#0\- +]*)(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?[hlL]?"
    r"(?P<conv>[diouxXeEfFgGcrsa%])"
)
_SUMMARY = "_enpact_repeat_summary"  # attribute marking a summary record (the filter lets it through)
_current: "RepeatedWarnings | None" = None
_current_lock = threading.Lock()


def _is_number(value: Any) -> bool:
    """An int or a float, numpy scalars included; not a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    return kind in ("i", "u", "f") and getattr(value, "ndim", 1) == 0


def _is_float(value: Any) -> bool:
    """A Python float or a numpy floating scalar (not an int, a bool or an array)."""
    if isinstance(value, float):
        return True
    dtype = getattr(value, "dtype", None)
    return dtype is not None and getattr(dtype, "kind", "") == "f" and getattr(value, "ndim", 1) == 0


def round_float(value: Any, digits: int = SIGNIFICANT_DIGITS) -> Any:
    """`value` rounded to `digits` significant digits (never to fewer than 0 decimals), as a Python float.

    0.30000000000000004 -> 0.3, 0.9374121976304335 -> 0.9374, 1.23456e-07 -> 1.235e-07, 123456.789 -> 123457.0.
    Anything that is not a float is returned unchanged."""
    if not _is_float(value):
        return value
    x = float(value)
    if x == 0 or not math.isfinite(x):
        return x
    decimals = digits - 1 - math.floor(math.log10(abs(x)))
    return round(x, max(decimals, 0))


def _specs(template: str) -> list[re.Match] | None:
    """The conversions of a format string that consume an argument, or None if it cannot be mapped simply."""
    specs = [m for m in _SPEC.finditer(template) if m.group("conv") != "%"]
    if any(m.group("width") == "*" or m.group("precision") == "*" for m in specs):
        return None
    return specs


def _bare(spec: re.Match) -> bool:
    """A %s / %r / %a conversion without a precision: the argument's str() or repr() is printed as it is."""
    return spec.group("conv") in "sra" and spec.group("precision") is None


def rounded_args(template: Any, args: Any) -> Any:
    """`args` with the floats that bare %s/%r conversions of `template` print rounded (the same object when
    nothing changes)."""
    if not args or not isinstance(template, str):
        return args
    specs = _specs(template)
    if specs is None:
        return args
    if isinstance(args, Mapping):
        keys = {m.group("key") for m in specs if _bare(m) and m.group("key") is not None}
        if not any(_is_float(args.get(k)) for k in keys):
            return args
        return {k: round_float(v) if k in keys else v for k, v in args.items()}
    if not isinstance(args, tuple) or len(specs) != len(args) or any(m.group("key") for m in specs):
        return args
    if not any(_bare(m) and _is_float(a) for m, a in zip(specs, args)):
        return args
    return tuple(round_float(a) if _bare(m) else a for m, a in zip(specs, args))


class RoundingFormatter(logging.Formatter):
    """A Formatter that rounds floats printed by bare %s/%r conversions (the record itself is not changed)."""

    def format(self, record: logging.LogRecord) -> str:
        args = rounded_args(record.msg, record.args)
        if args is not record.args:
            record = copy.copy(record)
            record.args = args
        return super().format(record)


class _ArgRange:
    """What the held-back occurrences of one argument position had: one value, or a range of numbers."""

    def __init__(self, value: Any):
        self.value = value
        self.varies = False
        self.numeric = _is_number(value)
        self.low = self.high = value if self.numeric else None

    def add(self, value: Any) -> None:
        try:
            if value is self.value or bool(value == self.value):
                return
        except (TypeError, ValueError):  # e.g. arrays: compared as different
            pass
        self.varies = True
        if self.numeric and _is_number(value):
            self.low, self.high = min(self.low, value), max(self.high, value)
        else:
            self.numeric = False

    def render(self, spec: re.Match) -> str:
        """This argument as `spec` prints it; a range `low..high` of numbers, `...` for other varying values."""
        text = spec.group(0)
        if spec.group("key") is not None:  # %(name)d -> %d: the value is passed on its own
            text = text.replace(f"({spec.group('key')})", "", 1)
        try:
            if not self.varies:
                return text % (round_float(self.value) if _bare(spec) else self.value,)
            if self.numeric:
                low, high = (round_float(v) if _bare(spec) else v for v in (self.low, self.high))
                return f"{text % (low,)}..{text % (high,)}"
        except (TypeError, ValueError):
            pass
        return "..."


class _Repeats:
    """The occurrences of one template after the first."""

    def __init__(self, record: logging.LogRecord):
        self.level, self.name, self.template = record.levelno, record.name, record.msg
        self.count = 0
        self.args: dict[Any, _ArgRange] | None = None
        self.shape_ok = True

    def add(self, record: logging.LogRecord) -> None:
        self.count += 1
        args = record.args
        items = list(args.items()) if isinstance(args, Mapping) else list(enumerate(args or ()))
        if self.args is None:
            self.args = {k: _ArgRange(v) for k, v in items}
        elif set(self.args) != {k for k, _ in items}:
            self.shape_ok = False
        else:
            for k, v in items:
                self.args[k].add(v)

    def message(self) -> str:
        """`N more like: <template with the held-back arguments filled in>`."""
        return f"{self.count} more like: {self._render()}"

    def _render(self) -> str:
        template = str(self.template)
        specs = _specs(template)
        if not self.args or not self.shape_ok or specs is None:
            return template
        parts, last = [], 0
        for i, spec in enumerate(specs):
            key = spec.group("key") if spec.group("key") is not None else i
            if key not in self.args:
                return template
            parts += [template[last:spec.start()].replace("%%", "%"), self.args[key].render(spec)]
            last = spec.end()
        if not any(spec.group("key") is not None for spec in specs) and len(specs) != len(self.args):
            return template
        return "".join(parts) + template[last:].replace("%%", "%")

    def record(self) -> logging.LogRecord:
        summary = logging.LogRecord(self.name, self.level, "", 0, self.message(), None, None)
        setattr(summary, _SUMMARY, True)
        return summary


class RepeatedWarnings(logging.Filter):
    """Lets the first record of each (level, logger, format string) through and holds back the others, for
    levels from `level` up (WARNING: warnings and errors). `flush()` writes the summary lines."""

    def __init__(self, handler: logging.Handler | None = None, level: int = logging.WARNING):
        super().__init__()
        self.handler = handler
        self.level = level
        self._seen: set[tuple] = set()
        self._repeats: dict[tuple, _Repeats] = {}  # in order of first repeat
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SUMMARY, False) or record.levelno < self.level:
            return True
        try:
            key = (record.levelno, record.name, record.msg)
            hash(key)
        except TypeError:  # an unhashable msg object: never collapsed
            return True
        with self._lock:
            if key not in self._seen:
                self._seen.add(key)
                return True
            repeats = self._repeats.get(key)
            if repeats is None:
                repeats = self._repeats[key] = _Repeats(record)
            repeats.add(record)
        return False

    def summary(self) -> list[logging.LogRecord]:
        """One record per template that was held back (`N more like: ...`); forgets what it has seen."""
        with self._lock:
            repeats, self._repeats, self._seen = list(self._repeats.values()), {}, set()
        return [r.record() for r in repeats]

    def flush(self) -> int:
        """Write the summary lines through the handler; returns how many were written."""
        records = self.summary()
        if self.handler is not None:
            for record in records:
                self.handler.handle(record)
        return len(records)


def install(handler: logging.Handler, fmt: str | None = None) -> RepeatedWarnings:
    """Put a RepeatedWarnings filter and a RoundingFormatter (format `fmt`, else the handler's) on `handler`;
    `flush()` and the exit hook use this filter from now on (a filter installed before is dropped unflushed:
    its handler has been replaced)."""
    global _current
    if fmt is None and handler.formatter is not None:
        fmt = handler.formatter._fmt
    handler.setFormatter(RoundingFormatter(fmt))
    for old in [f for f in handler.filters if isinstance(f, RepeatedWarnings)]:
        handler.removeFilter(old)
    repeated = RepeatedWarnings(handler)
    handler.addFilter(repeated)
    with _current_lock:
        _current = repeated
    return repeated


def flush() -> int:
    """Write the `N more like: ...` lines of the installed filter now (e.g. at the end of a command)."""
    with _current_lock:
        current = _current
    return current.flush() if current is not None else 0


@atexit.register
def _flush_at_exit() -> None:
    """At interpreter exit: flush, if the handler still writes to the stream the process writes to."""
    with _current_lock:
        current = _current
    if current is None or current.handler is None:
        return
    stream = getattr(current.handler, "stream", None)
    if stream is not None and (getattr(stream, "closed", False) or stream not in (sys.stderr, sys.__stderr__)):
        return  # e.g. a test's captured stream that is gone by now
    try:
        current.flush()
    except Exception:  # never fail at exit
        pass


def stderr_is_terminal(stream: Any = None) -> bool:
    """True when `stream` (default sys.stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable: Iterable | None = None, *, disable: bool = False, **kwargs: Any):
    """tqdm(iterable, disable=..., **kwargs), drawn only when not `disable`d and its stream (stderr unless
    `file=`) is a terminal. Takes tqdm's arguments, so `tqdm(` -> `progress_bar(` is the whole change at a call
    site; a bar that is not drawn still iterates and takes update() and close()."""
    from tqdm import tqdm

    show = not disable and stderr_is_terminal(kwargs.get("file"))
    return tqdm(iterable, disable=not show, **kwargs)
