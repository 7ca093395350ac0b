"""The step layer: every command line is a configuration of a step, the runner never goes through the CLI."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from enpact.cli import build_parser
from enpact.options import from_arguments
from enpact.steps import STEPS, as_dict, roles, step_of

SRC = Path(__file__).resolve().parents[1] / "src" / "enpact"


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_every_step_has_a_command_line_that_builds_its_configuration():
    commands = _subparsers()
    for name, step in STEPS.items():
        assert name in commands, f"no `enpact {name}` command for step {name}"
        assert commands[name].get_default("step") is step, f"`enpact {name}` does not run step {name}"
        fields = {f.name for f in dataclasses.fields(step.config)}
        dests = {a.dest for a in commands[name]._actions if a.dest != "help"}
        nested = {f.name for f in dataclasses.fields(step.config) if dataclasses.is_dataclass(f.type)
                  or f.type in ("PredictorConfig",)}
        derived = {f.name for f in dataclasses.fields(step.config) if not f.metadata.get("option", None)
                   or not f.metadata["option"].cli}
        # the flags are the configuration's fields: none more, none missing (a nested configuration's are its own)
        assert fields - nested - derived <= dests, f"`enpact {name}` lacks flags for {fields - nested - derived - dests}"


def test_configurations_name_their_files_and_serialise_to_plain_values(tmp_path):
    commands = _subparsers()
    (tmp_path / "in").write_text("x")
    args = commands["merge"].parse_args(["--inputs", str(tmp_path / "in"), "--out", str(tmp_path / "out.h5")])
    config = from_arguments(args.step.config, args)
    assert step_of(config).name == "merge"
    assert roles(config) == {"inputs": "input", "out": "output", "export_matrix": "output", "plan": "input"}
    assert as_dict(config) == {"inputs": [str(tmp_path / "in")], "out": str(tmp_path / "out.h5"),
                               "export_matrix": None, "plan": None}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def test_no_library_module_imports_the_command_line():
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                 if "cli" not in p.relative_to(SRC).parts and p.name != "__main__.py"
                 and any(m == "enpact.cli" or m.startswith("enpact.cli.") for m in _imported_modules(p))]
    assert not offenders, f"library modules importing enpact.cli: {offenders}"


def test_planted_cli_import_is_found(tmp_path):
    planted = tmp_path / "runner.py"
    planted.write_text("from enpact.cli import build_parser\n")
    assert "enpact.cli" in _imported_modules(planted)


# what a command-line module may take from the library besides the steps: choices for its options and the
# entry points of `enpact` itself
CLI_ALLOWED = {("enpact.loci", "ANNOTATION_FORMATS"), ("enpact.models", "available_model_types"),
               ("enpact.predictdb", "SNP_KEYS"), ("enpact.params", "resolve_params"), ("enpact.params", "DEMOS"),
               ("enpact.params", "write_demo_weights"),
               ("enpact.runner", "run_pipeline"), ("enpact.versions", "software_versions"),
               ("enpact.errors", "EnpactError"), ("enpact.errors", "path_error"), ("enpact", "__version__"),
               ("enpact", "logsummary"), ("enpact.logsummary", "install"),
               ("enpact.options", "add_arguments"), ("enpact.options", "from_arguments")}


def _library_imports_of_cli_module(path: Path) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "enpact":
            if node.module in ("enpact.steps",) or node.module.startswith("enpact.cli"):
                continue
            found += [(node.module, alias.name) for alias in node.names if (node.module, alias.name) not in CLI_ALLOWED]
    return found


def test_command_line_modules_only_define_arguments_and_call_steps():
    offenders = {p.name: _library_imports_of_cli_module(p) for p in (SRC / "cli").glob("*.py")}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"command-line modules using the library directly (move the logic into a step): {offenders}"


def test_planted_library_logic_in_the_cli_is_found(tmp_path):
    planted = tmp_path / "train.py"
    planted.write_text("from enpact.training import train_and_evaluate\nfrom enpact.steps import train\n")
    assert _library_imports_of_cli_module(planted) == [("enpact.training", "train_and_evaluate")]


def _overlapping_study(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A locus with a 6-bp deletion and an SNV inside it: S1 carries both on haplotype 1, S2 on both haplotypes,
    S3 one on each haplotype (no overlap). Three haplotypes have an overlapping record to skip."""
    from conftest import random_sequence, write_fasta, write_vcf

    sequence = random_sequence(4000, 7)
    fasta = write_fasta(tmp_path / "genome.fa", {"chr1": sequence})
    deletion = ["chr1", "1991", "del", sequence[1990:1996], sequence[1990], ".", "PASS", ".", "GT"]
    snv_base = "A" if sequence[1993] != "A" else "C"
    snv = ["chr1", "1994", "snv", sequence[1993], snv_base, ".", "PASS", ".", "GT"]
    records = ["\t".join(deletion + ["1|0", "1|1", "0|1"]), "\t".join(snv + ["1|0", "1|1", "1|0"])]
    vcf = write_vcf(tmp_path / "calls.vcf", {"chr1": 4000}, ["S1", "S2", "S3"], records)
    loci = tmp_path / "loci.tsv"
    loci.write_text("locus_id\tchrom\tcenter\tsplit\nL1\tchr1\t2000\ttrain\n")
    return fasta, vcf, loci


def test_overlapping_records_are_counted_once_in_the_counter_the_steps_log(tmp_path, caplog, tiny_enformer):
    """One counter (the reader's): sequence and predict log the overlapping records they skipped."""
    import logging

    from enpact.steps import PredictConfig, PredictorConfig, SequenceConfig, predict, sequence

    fasta, vcf, loci = _overlapping_study(tmp_path)
    with caplog.at_level(logging.INFO):
        sequence(SequenceConfig(fasta=fasta, loci=loci, out=tmp_path / "w.fa", window_bp=1024, vcf=vcf))
    assert "overlapping skipped: 3" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        predict(PredictConfig(fasta=fasta, loci=loci, out=tmp_path / "f.h5", vcf=vcf, progress=False,
                              predictor=PredictorConfig(weights=str(tiny_enformer), device="cpu")))
    assert "overlapping skipped: 3" in caplog.text


def test_planted_fresh_counter_is_seen(tmp_path, caplog, monkeypatch):
    """Planted defect: counting into a counter nobody logs leaves the logged count at 0, which the test sees."""
    import logging

    import enpact.predict as predict_module
    from enpact.steps import SequenceConfig, sequence
    from enpact.variants import VariantCounts

    fasta, vcf, loci = _overlapping_study(tmp_path)
    original = predict_module.locus_windows
    monkeypatch.setattr(predict_module, "locus_windows",
                        lambda *args: original(*args[:5], VariantCounts(), *args[6:]))   # the counts argument
    with caplog.at_level(logging.INFO):
        sequence(SequenceConfig(fasta=fasta, loci=loci, out=tmp_path / "w.fa", window_bp=1024, vcf=vcf))
    assert "overlapping skipped: 0" in caplog.text
