"""The local runner's resume logic: fingerprints and the step cache."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from enpact.runner import Runner, StepCache, fingerprint
from enpact.steps import ChunkConfig, DatabaseConfig, PredictConfig, PredictorConfig


def test_fingerprint_follows_input_content_not_outputs(tmp_path):
    loci, out = tmp_path / "loci.tsv", tmp_path / "out.tsv"
    loci.write_text("a")
    config = ChunkConfig(loci=loci, outdir=out)
    first = fingerprint(config)
    out.write_text("written by the step")
    assert fingerprint(config) == first  # an existing output does not change the fingerprint
    loci.write_text("a")  # same content, new mtime
    assert fingerprint(config) == first
    loci.write_text("b")
    assert fingerprint(config) != first
    assert fingerprint(dataclasses.replace(config, loci_per_chunk=3)) != fingerprint(config)


def test_fingerprint_follows_nested_options_and_every_input_not_progress_bars(tmp_path):
    fasta, loci = tmp_path / "ref.fa", tmp_path / "loci.tsv"
    fasta.write_text(">chr1\nACGT\n")
    loci.write_text("a")
    config = PredictConfig(fasta=fasta, loci=loci, out=tmp_path / "ref.h5")
    first = fingerprint(config)
    assert fingerprint(dataclasses.replace(config, progress=False)) == first
    assert fingerprint(dataclasses.replace(config, predictor=PredictorConfig(bins=2))) != first
    chunks = [tmp_path / "lin" / "c1.h5", tmp_path / "lin" / "c2.h5"]
    chunks[0].parent.mkdir()
    for chunk in chunks:
        chunk.write_text("x")
    database = DatabaseConfig(linearized=tuple(chunks), name="enpact", outdir=tmp_path / "db")
    before = fingerprint(database)
    chunks[1].write_text("y")   # the second of several inputs of one field
    assert fingerprint(database) != before


def test_completed_steps_are_skipped_until_an_input_changes(tmp_path):
    loci = tmp_path / "loci.tsv"
    loci.write_text("locus_id\tchrom\tcenter\nL1\tchr1\t100\nL2\tchr1\t200\n")
    runner = Runner(tmp_path / "out", progress=False)
    config = ChunkConfig(loci=loci, loci_per_chunk=1, outdir=tmp_path / "out" / "chunks" / "loci")
    outputs = [tmp_path / "out" / "chunks" / "loci"]
    assert runner.step("loci", "chunk", config, outputs) is True
    again = Runner(tmp_path / "out", progress=False)
    assert again.step("loci", "chunk", config, outputs) is False
    loci.write_text("locus_id\tchrom\tcenter\nL1\tchr1\t100\n")
    assert again.step("loci", "chunk", config, outputs) is True
    assert [p.name for p in sorted((tmp_path / "out" / "chunks" / "loci").iterdir())] == ["L1--L1.tsv"]
    cache = StepCache.load(tmp_path / "out" / "pipeline_info" / "steps.json")
    assert set(cache.done) == {"chunk"}
    assert Path(tmp_path / "out" / "pipeline_info" / "steps.json").exists()


def test_cached_steps_keep_the_seconds_of_the_run_that_computed_them(tmp_path):
    loci = tmp_path / "loci.tsv"
    loci.write_text("locus_id\tchrom\tcenter\nL1\tchr1\t100\n")
    config = ChunkConfig(loci=loci, loci_per_chunk=1, outdir=tmp_path / "out" / "chunks" / "loci")
    outputs = [tmp_path / "out" / "chunks" / "loci"]
    first = Runner(tmp_path / "out", progress=False)
    first.step("loci", "chunk", config, outputs)
    (_, _, seconds, status), = first.timings
    assert status == "ran" and seconds > 0
    again = Runner(tmp_path / "out", progress=False)
    again.step("loci", "chunk", config, outputs)
    assert again.timings == [("loci", "chunk", seconds, "cached")]


def test_a_cache_of_an_earlier_version_still_resumes(tmp_path):
    loci = tmp_path / "loci.tsv"
    loci.write_text("locus_id\tchrom\tcenter\nL1\tchr1\t100\n")
    config = ChunkConfig(loci=loci, loci_per_chunk=1, outdir=tmp_path / "out" / "chunks" / "loci")
    outputs = [tmp_path / "out" / "chunks" / "loci"]
    Runner(tmp_path / "out", progress=False).step("loci", "chunk", config, outputs)
    steps = tmp_path / "out" / "pipeline_info" / "steps.json"
    steps.write_text('{"chunk": "%s"}' % fingerprint(config, tmp_path / "out"))   # fingerprint only, as before
    again = Runner(tmp_path / "out", progress=False)
    assert again.step("loci", "chunk", config, outputs) is False
    assert again.timings == [("loci", "chunk", 0.0, "cached")]


def test_a_second_run_into_the_same_outdir_is_refused_and_a_dead_holder_is_taken_over(tmp_path, caplog):
    """Issue 24: two runs into one outdir both printed "EnPACT finished"; the folder held only the second's."""
    import socket
    import subprocess

    from enpact.errors import EnpactError
    from enpact.params import resolve_params
    from enpact.runner import OutdirLock, run_pipeline

    lock = tmp_path / "out" / "pipeline_info" / "run.lock"
    lock.parent.mkdir(parents=True)
    other = subprocess.Popen(["sleep", "60"])
    try:
        lock.write_text(f"{socket.gethostname()} {other.pid}\n")
        params = resolve_params(None, {"outdir": str(tmp_path / "out")}, "single")
        with pytest.raises(EnpactError, match=rf"out is being written by another enpact run \(process {other.pid} "
                                              rf"on {socket.gethostname()}\): wait for it"):
            run_pipeline(params, progress=False)
        assert sorted(p.name for p in lock.parent.iterdir()) == ["run.lock"]   # nothing else written
    finally:
        other.kill()
        other.wait()
    with caplog.at_level("WARNING"), OutdirLock(lock):   # the holder is gone: taken over, with a message
        assert lock.read_text().split() == [socket.gethostname(), str(os.getpid())]
    assert "taking over the lock of an earlier run" in caplog.text and not lock.exists()


def test_large_inputs_are_stamped_by_content_and_read_once(tmp_path):
    """Issue 24: inputs over 16 MiB were stamped by size and mtime, so touching or copying the FASTA reran every
    predictor step; now by content, with the hash remembered while size, mtime and inode stay the same."""
    from enpact.runner import ContentStamps

    big = tmp_path / "genome.fa"
    big.write_bytes(b"ACGT" * (5 * 2**20))   # 20 MiB
    stamps = ContentStamps(tmp_path / "hashes.json")
    first = stamps.stamp(big)
    stamps.save()
    os.utime(big, ns=(1, 2))   # touched: hashed again, same content, same stamp
    again = ContentStamps(tmp_path / "hashes.json")
    assert again.stamp(big) == first
    copy = tmp_path / "copy.fa"
    copy.write_bytes(big.read_bytes())
    assert again.stamp(copy) == first
    again.save()
    identity = big.stat()
    with open(big, "r+b") as handle:   # same size, inode and mtime: the remembered hash, the file is not read
        handle.write(b"N")
    os.utime(big, ns=(identity.st_atime_ns, identity.st_mtime_ns))
    assert ContentStamps(tmp_path / "hashes.json").stamp(big) == first
    os.utime(big, ns=(1, 3))   # a changed mtime: read again, and the change is seen
    assert ContentStamps(tmp_path / "hashes.json").stamp(big) != first


def test_a_results_folder_copied_elsewhere_keeps_its_fingerprints(tmp_path):
    """Issue 24: `cp -a results elsewhere` reran every step (absolute output paths entered the fingerprints)."""
    for root in (tmp_path / "a", tmp_path / "b"):
        (root / "loci").mkdir(parents=True)
        (root / "loci" / "loci.tsv").write_text("L1\n")
    configs = {root: ChunkConfig(loci=root / "loci" / "loci.tsv", outdir=root / "loci" / "chunks")
               for root in (tmp_path / "a", tmp_path / "b")}
    a, b = (fingerprint(config, root) for root, config in configs.items())
    assert a == b
    assert fingerprint(configs[tmp_path / "a"]) != fingerprint(configs[tmp_path / "b"])   # without the root
