"""enpact.logsummary: a repeated warning once plus `N more like: ...`, rounded floats, progress bars only on a
terminal; and configure_logging installing it."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import numpy as np
import pytest

from enpact import logsummary
from enpact.logsummary import RepeatedWarnings, install, progress_bar, round_float, rounded_args

TEMPLATE = "%s: %d missing genotype calls were treated as reference"


@pytest.fixture
def logger():
    """A logger of its own writing to a StringIO through a handler with the filter and formatter installed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("enpact %(levelname)s: %(message)s"))
    repeated = install(handler)
    log = logging.getLogger("enpact.test_logsummary")
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log, stream, repeated
    log.handlers[:] = []


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_repeated_warning_is_written_once_and_summarised_on_flush(logger):
    log, stream, repeated = logger
    for n in (702, 768, 806, 848):
        log.warning(TEMPLATE, "g.vcf.gz", n)
    assert lines(stream) == ["enpact WARNING: g.vcf.gz: 702 missing genotype calls were treated as reference"]
    assert repeated.flush() == 1
    assert lines(stream)[1:] == ["enpact WARNING: 3 more like: g.vcf.gz: 768..848 missing genotype calls were "
                                 "treated as reference"]
    assert repeated.flush() == 0  # said once
    log.warning(TEMPLATE, "g.vcf.gz", 1)  # after a flush the template starts afresh
    assert lines(stream)[-1].endswith(": 1 missing genotype calls were treated as reference")


def test_only_the_same_template_at_the_same_level_is_collapsed(logger):
    log, stream, repeated = logger
    log.info("[personalize] %s", "chunk1")
    log.info("[personalize] %s", "chunk2")  # INFO: every one is written
    log.warning("first %s", "a")
    log.warning("second %s", "a")  # another template
    log.error("first %s", "b")  # same template, another level
    log.warning("no arguments")
    log.warning("no arguments")
    log.warning("first %s", "c")
    log.warning("first %s", "d")
    assert lines(stream) == ["enpact INFO: [personalize] chunk1", "enpact INFO: [personalize] chunk2",
                             "enpact WARNING: first a", "enpact WARNING: second a", "enpact ERROR: first b",
                             "enpact WARNING: no arguments"]
    repeated.flush()
    assert lines(stream)[6:] == ["enpact WARNING: 1 more like: no arguments", "enpact WARNING: 2 more like: first ..."]


def test_summary_with_mapping_arguments_and_constant_values(logger):
    log, stream, repeated = logger
    for n, share in ((3, 0.25), (5, 0.25), (4, 0.25)):
        log.warning("%(path)s: %(n)d calls (%(share).1f%%)", {"path": "x.vcf", "n": n, "share": share})
    repeated.flush()
    assert lines(stream) == ["enpact WARNING: x.vcf: 3 calls (0.2%)",
                             "enpact WARNING: 2 more like: x.vcf: 4..5 calls (0.2%)"]


def test_other_handlers_such_as_caplog_still_see_every_record(caplog):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    install(handler, "%(message)s")
    log = logging.getLogger("enpact.test_logsummary.caplog")
    log.addHandler(handler)
    try:
        with caplog.at_level(logging.WARNING, logger=log.name):
            for n in range(3):
                log.warning(TEMPLATE, "v.vcf", n)
    finally:
        log.removeHandler(handler)
    assert len(caplog.records) == 3
    assert len(lines(stream)) == 1


def test_floats_printed_with_a_bare_s_or_r_are_rounded(logger):
    log, stream, _ = logger
    log.info("train: n=%d, model r=%s, baseline r=%s", 160, 0.9374121976304335, np.float64(0.6878763674351616))
    log.info("sum %s, float32 %r, tiny %s, big %s", 0.1 + 0.2, np.float32(0.1), 1.23456789e-7, 123456.789)
    log.info("explicit %.1f%% and %g and %.6f stay", 15.76, 0.123456789, 0.123456789)
    log.info("ints %s %d and strings %s stay", 12345678901, 7, "0.30000000000000004")
    log.info("mapping %(r)s", {"r": 0.30000000000000004})
    assert lines(stream) == [
        "enpact INFO: train: n=160, model r=0.9374, baseline r=0.6879",
        "enpact INFO: sum 0.3, float32 0.1, tiny 1.235e-07, big 123457.0",
        "enpact INFO: explicit 15.8% and 0.123457 and 0.123457 stay",
        "enpact INFO: ints 12345678901 7 and strings 0.30000000000000004 stay",
        "enpact INFO: mapping 0.3",
    ]


def test_rounding_does_not_change_the_record():
    record = logging.LogRecord("enpact", logging.INFO, "", 0, "r=%s", (0.9374121976304335,), None)
    assert logsummary.RoundingFormatter("%(message)s").format(record) == "r=0.9374"
    assert record.args == (0.9374121976304335,) and record.getMessage() == "r=0.9374121976304335"


@pytest.mark.parametrize("value, expected", [
    (0.30000000000000004, 0.3), (0.9374121976304335, 0.9374), (-0.00012345678, -0.0001235), (1e-300, 1e-300),
    (123456.789, 123457.0), (2.5, 2.5), (0.0, 0.0), (float("inf"), float("inf")),
])
def test_round_float(value, expected):
    assert round_float(value) == expected and type(round_float(value)) is float


def test_round_float_leaves_other_values_alone():
    assert round_float(7) == 7 and type(round_float(7)) is int
    assert round_float("0.123456789") == "0.123456789" and round_float(True) is True
    assert np.isnan(round_float(float("nan")))


def test_rounded_args_keeps_arguments_it_cannot_map():
    args = (0.123456789,)
    assert rounded_args("%*s", (5, 0.123456789)) == (5, 0.123456789)  # * width: left alone
    assert rounded_args("%s %s", args) is args  # wrong count: logging reports that itself
    assert rounded_args("no conversion", ()) == ()


def test_the_missing_calls_warning_of_each_chunk_is_read_once(capsys):
    """The real per-chunk warning (VariantCounts.log, once per personalize chunk of `enpact run`)."""
    from enpact.cli import configure_logging
    from enpact.variants import MISSING_IN_SEQUENCES, VariantCounts

    configure_logging()
    for missing in (702, 768, 806):
        VariantCounts(records=10, missing_calls=missing).log("genotypes.vcf.gz")
    logsummary.flush()
    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if line.startswith("enpact WARNING")]
    assert warnings == [
        f"enpact WARNING: genotypes.vcf.gz: 702 missing genotype alleles {MISSING_IN_SEQUENCES}",
        f"enpact WARNING: 2 more like: genotypes.vcf.gz: 768..806 missing genotype alleles {MISSING_IN_SEQUENCES}",
    ]
    assert sum("records: 10" in line for line in err) == 3  # the INFO lines stay one per chunk


def test_configure_logging_summarises_at_exit():
    code = (
        "import logging\n"
        "from enpact.cli import configure_logging\n"
        "configure_logging()\n"
        "log = logging.getLogger('enpact.x')\n"
        "for n in range(5):\n"
        "    log.warning('chunk %d: %s skipped', n, 'locus')\n"
        "log.info('r=%s', 0.1 + 0.2)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["enpact WARNING: chunk 0: locus skipped", "enpact INFO: r=0.3",
                                          "enpact WARNING: 4 more like: chunk 1..4: locus skipped"]


def test_configure_logging_again_starts_afresh(capsys):
    """Each in-process `main()` configures logging anew: a warning of an earlier command is not held back."""
    from enpact.cli import configure_logging

    log = logging.getLogger("enpact.x")
    configure_logging()
    log.warning("once %s", 1)
    configure_logging()
    log.warning("once %s", 2)
    assert [l for l in capsys.readouterr().err.splitlines() if "once" in l] == ["enpact WARNING: once 1",
                                                                               "enpact WARNING: once 2"]
    assert logsummary.flush() == 0


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal(monkeypatch):
    redirected = io.StringIO()
    monkeypatch.setattr(sys, "stderr", redirected)
    assert list(progress_bar(range(5), desc="predict")) == list(range(5))  # stderr is not a terminal
    bar = progress_bar(total=3, desc="predict")
    bar.update(3)
    bar.close()
    assert redirected.getvalue() == ""

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert list(progress_bar(range(5), desc="linearize", mininterval=0)) == list(range(5))
    assert "linearize" in terminal.getvalue() and "5/5" in terminal.getvalue()

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert list(progress_bar(range(5), desc="linearize", disable=True)) == list(range(5))  # --no-progress
    assert terminal.getvalue() == ""


def test_progress_bar_follows_its_file_argument(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    redirected = io.StringIO()
    list(progress_bar(range(3), file=redirected))
    assert redirected.getvalue() == ""
    terminal = Terminal()
    list(progress_bar(range(3), file=terminal, mininterval=0))
    assert "3/3" in terminal.getvalue()


def test_filter_is_usable_on_its_own():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    repeated = RepeatedWarnings(handler)
    handler.addFilter(repeated)
    log = logging.getLogger("enpact.test_logsummary.alone")
    log.addHandler(handler)
    log.propagate = False
    try:
        for _ in range(3):
            log.warning("same")
        assert [r.getMessage() for r in repeated.summary()] == ["2 more like: same"]
        assert repeated.summary() == []
    finally:
        log.removeHandler(handler)
    assert stream.getvalue() == "same\n"


def test_no_direct_tqdm_in_the_package():
    """Progress bars go through logsummary.progress_bar (drawn only on a terminal, never into redirected logs)."""
    import re
    from pathlib import Path

    import enpact

    src = Path(enpact.__file__).parent
    direct = [f"{p.name}:{i}" for p in src.rglob("*.py") if p.name != "logsummary.py"
              for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\btqdm\(", line)]
    assert direct == []
