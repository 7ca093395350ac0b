"""Resources and scheduler settings that the profiles give each process, resolved as Nextflow resolves them.

conf/*.config are read by tests/nextflow/render_modules.groovy (ConfigSlurper; generic < withLabel < withName,
later files win within a level; profiles in command-line order, as Nextflow's strict config parser applies them)
and the directive closures are evaluated for a task at each retry attempt. Checked here:
- Google Batch GPU tasks fit the machine type that carries their GPU, on every attempt, in either profile order;
- on SLURM a site's scheduler options stay on every task: CPU-mode predictor tasks keep the site's
  process.clusterOptions, GPU tasks get params.cluster_options followed by the GPU request;
- `-profile gpu` combined with an executor profile gives the same settings in either order;
- GPU tasks see the GPU Nextflow gives them inside containers (CUDA_VISIBLE_DEVICES passed through);
- the test profile is the demo `enpact run` runs, and fits a 2-CPU machine.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "nextflow"))

from nf_tooling import ROOT, parse_process, profile_configs, profile_params, profiles, render_entries  # noqa: E402

GIB = 1024 ** 3
PREDICTOR = parse_process(ROOT / "modules" / "enpact_personalize" / "main.nf")
TRAIN = parse_process(ROOT / "modules" / "enpact_train" / "main.nf")
# Google Cloud machine types: vCPUs, memory (GB) and the one GPU model they carry
MACHINES = {"g2-standard-8": (8, 32, "nvidia-l4"), "g2-standard-16": (16, 64, "nvidia-l4"),
            "a2-highgpu-1g": (12, 85, "nvidia-tesla-a100"), "a3-highgpu-1g": (26, 234, "nvidia-h100-80gb")}
SYSTEM_RESERVE_GB = 2   # what Batch and the OS keep of each machine


def resolve(cases: list[dict], directory: Path) -> dict[str, dict]:
    """Resolved directives per case {id, profiles, params (overrides), process, attempt, engine, extra_configs}."""
    entries = []
    for case in cases:
        process = case.get("process", PREDICTOR)
        entries.append({
            "id": case["id"], "process": process.name, "labels": process.labels,
            "configs": [str(c) for c in profile_configs(case["profiles"], case.get("extra_configs", []))],
            "params": profile_params(case["profiles"], case.get("params")), "inputs": {},
            "attempt": case.get("attempt", 1), "engine": case.get("engine"), "profile": ",".join(case["profiles"]),
        })
    results = render_entries(entries, directory)
    for case_id, result in results.items():
        assert not result["error"], f"{case_id}: {result['error']}"
    return {case_id: result["directives"] for case_id, result in results.items()}


def max_attempts(directory: Path) -> int:
    """1 + maxRetries of a predictor task."""
    return 1 + int(resolve([{"id": "r", "profiles": []}], directory)["r"]["maxRetries"])


def gigabytes(value: dict | str) -> float:
    """A resolved memory directive in GB."""
    if isinstance(value, dict):
        return value["bytes"] / GIB
    number, unit = re.fullmatch(r"([\d.]+)\s*\.?\s*(GB|MB|TB)", str(value)).groups()
    return float(number) * {"MB": 1 / 1024, "GB": 1, "TB": 1024}[unit]


# --------------------------------------------------------------------------------------------------------------
# Google Batch
# --------------------------------------------------------------------------------------------------------------

GPU_TYPES = ["nvidia-l4", "nvidia-tesla-a100", "nvidia-h100-80gb"]


def test_google_batch_gpu_tasks_fit_their_machine_type(tmp_path):
    attempts = max_attempts(tmp_path)
    cases = [{"id": f"{'-'.join(order)}|{gpu}|{attempt}", "profiles": order, "params": {"gpu_type": gpu},
              "attempt": attempt}
             for order in (["google_batch", "gpu"], ["gpu", "google_batch"]) for gpu in GPU_TYPES
             for attempt in range(1, attempts + 1)]
    resolved = resolve(cases, tmp_path)
    for case in cases:
        directives = resolved[case["id"]]
        machine = directives["machineType"]
        assert machine in MACHINES, f"{case['id']}: machine type {machine!r}"
        vcpus, memory_gb, carried = MACHINES[machine]
        gpu = case["params"]["gpu_type"]
        assert carried == gpu, f"{case['id']}: {machine} carries {carried}, the task asks for {gpu}"
        assert directives["accelerator"] == {"request": 1, "type": gpu}, case["id"]
        assert directives["cpus"] <= vcpus, f"{case['id']}: {directives['cpus']} CPUs on {machine} ({vcpus} vCPUs)"
        assert gigabytes(directives["memory"]) <= memory_gb - SYSTEM_RESERVE_GB, (
            f"{case['id']}: {gigabytes(directives['memory'])} GB on {machine} ({memory_gb} GB)")
        assert directives["executor"] == "google-batch" and directives["queue"] is None, case["id"]


def test_google_batch_cpu_mode_keeps_the_base_resources(tmp_path):
    """Without GPUs the predictor tasks on Google Batch ask for what conf/base.config gives them elsewhere."""
    cases = [{"id": f"{name}|{attempt}", "profiles": profile, "attempt": attempt}
             for name, profile in (("google", ["google_batch"]), ("base", [])) for attempt in (1, 2)]
    resolved = resolve(cases, tmp_path)
    for attempt in (1, 2):
        google, base = resolved[f"google|{attempt}"], resolved[f"base|{attempt}"]
        assert google["machineType"] is None and google["accelerator"] is None
        assert (google["cpus"], google["memory"]) == (base["cpus"], base["memory"]), attempt


# --------------------------------------------------------------------------------------------------------------
# SLURM
# --------------------------------------------------------------------------------------------------------------

SITE = "process {\n    clusterOptions = '--account=site_lab'\n}\n"


def test_slurm_keeps_the_sites_scheduler_options(tmp_path):
    site = tmp_path / "site.config"
    site.write_text(SITE)
    cases = [
        # CPU mode: a site's own process.clusterOptions (a -c file) reaches the predictor tasks too
        {"id": "cpu-site", "profiles": ["slurm"], "extra_configs": [site]},
        {"id": "cpu-site-train", "profiles": ["slurm"], "extra_configs": [site], "process": TRAIN},
        # the parameter reaches every task
        {"id": "cpu-param", "profiles": ["slurm"], "params": {"cluster_options": "--account=lab"}},
        # GPU mode: the site's options first, then the GPU request, whatever the profile order
        {"id": "gpu-param", "profiles": ["slurm", "gpu"], "params": {"cluster_options": "--account=lab --qos=gpu"}},
        {"id": "gpu-param-reversed", "profiles": ["gpu", "slurm"], "params": {"cluster_options": "--account=lab --qos=gpu"}},
        {"id": "gpu-default", "profiles": ["slurm", "gpu"]},
        {"id": "gpu-own-request", "profiles": ["slurm", "gpu"], "params": {"gpu_cluster_options": "--gres=gpu:h100:1"}},
        # other executors get no SLURM syntax
        {"id": "gpu-awsbatch", "profiles": ["awsbatch", "gpu"]},
    ]
    got = {k: v.get("clusterOptions") for k, v in resolve(cases, tmp_path).items()}
    assert got["cpu-site"] == "--account=site_lab"
    assert got["cpu-site-train"] == "--account=site_lab"
    assert got["cpu-param"] == "--account=lab"
    assert got["gpu-param"] == got["gpu-param-reversed"] == "--account=lab --qos=gpu --gres=gpu:1"
    assert got["gpu-default"] == "--gres=gpu:1"
    assert got["gpu-own-request"] == "--gres=gpu:h100:1"
    assert not got["gpu-awsbatch"]


def test_slurm_check_sees_a_cpu_mode_override(tmp_path):
    """Planted failure: a process_gpu selector that always sets clusterOptions drops the site's account."""
    site = tmp_path / "site.config"
    site.write_text(SITE)
    broken = tmp_path / "slurm.config"
    broken.write_text((ROOT / "conf" / "slurm.config").read_text().replace(
        "    clusterOptions = { params.cluster_options }",
        "    clusterOptions = { params.cluster_options }\n"
        "    withLabel: process_gpu {\n        clusterOptions = { params.use_gpu ? '--gres=gpu:1' : '' }\n    }"))
    entry = {"id": "x", "profiles": [], "extra_configs": [broken, site]}
    assert resolve([entry], tmp_path)["x"]["clusterOptions"] == ""


# --------------------------------------------------------------------------------------------------------------
# GPU profile with executor and container profiles
# --------------------------------------------------------------------------------------------------------------

GPU_DIRECTIVES = ("cpus", "memory", "time", "accelerator", "container", "containerOptions", "queue", "clusterOptions",
                  "machineType", "executor")


@pytest.mark.parametrize("executor", ["slurm", "awsbatch", "google_batch"])
def test_gpu_profile_gives_the_same_settings_in_either_order(executor, tmp_path):
    cases = [{"id": "first", "profiles": ["gpu", executor], "params": {"gpu_queue": "g", "cpu_queue": "c"}},
             {"id": "last", "profiles": [executor, "gpu"], "params": {"gpu_queue": "g", "cpu_queue": "c"}}]
    resolved = resolve(cases, tmp_path)
    first = {k: resolved["first"].get(k) for k in GPU_DIRECTIVES}
    last = {k: resolved["last"].get(k) for k in GPU_DIRECTIVES}
    assert first == last
    assert first["accelerator"] in (1, {"request": 1, "type": "nvidia-l4"})


@pytest.mark.parametrize("engine, option", [("docker", "--gpus all"), ("singularity", "--nv"), ("apptainer", "--nv")])
def test_gpu_tasks_see_their_gpu_in_containers(engine, option, tmp_path):
    resolved = resolve([{"id": "gpu", "profiles": [engine, "gpu"], "engine": engine},
                        {"id": "cpu", "profiles": [engine], "engine": engine}], tmp_path)
    assert resolved["gpu"]["containerOptions"] == option and resolved["cpu"]["containerOptions"] == ""
    assert resolved["gpu"]["container"] == profile_params(["gpu"])["gpu_container"]
    assert resolved["cpu"]["container"] == profile_params([])["cpu_container"]
    # Nextflow (26.10+, local executor) gives each task its GPU in CUDA_VISIBLE_DEVICES; it must reach the container
    whitelist = profiles()[engine].settings[f"{engine}.envWhitelist"]
    assert "CUDA_VISIBLE_DEVICES" in str(whitelist).split(",")


def test_venv_profile_runs_without_containers():
    settings = profiles()["venv"].settings
    for engine in ("docker", "singularity", "apptainer", "podman", "conda"):
        assert settings[f"{engine}.enabled"] is False, engine
    assert settings["env.ENPACT_REQUIRE_VENV"] == "true"


# --------------------------------------------------------------------------------------------------------------
# Test profile
# --------------------------------------------------------------------------------------------------------------

def test_test_profile_is_the_demo_that_enpact_run_runs():
    """-profile test and `enpact run` without --params are the same study (tests/nextflow/test_profile.md5)."""
    from enpact.params import NEXTFLOW_ONLY, demo_params, load_schema, schema_defaults

    defaults = schema_defaults(load_schema())
    demo = {**defaults, **demo_params()}
    nextflow = profile_params(["test"])
    for name in sorted(set(demo) | set(nextflow)):
        if name in NEXTFLOW_ONLY or name == "outdir":
            continue
        want, got = demo.get(name), nextflow.get(name)
        if isinstance(want, str) and isinstance(got, str) and "/" in want:
            want, got = Path(want).resolve(), Path(got).resolve()
        assert got == want, f"{name}: -profile test has {got!r}, enpact run's demo {want!r}"


def test_test_profile_fits_two_cpus(tmp_path):
    resolved = resolve([{"id": "gpu", "profiles": ["test"]}, {"id": "train", "profiles": ["test"], "process": TRAIN}],
                       tmp_path)
    for directives in resolved.values():
        limits = directives["resourceLimits"]
        assert limits["cpus"] == 2 and gigabytes(limits["memory"]) <= 6
    # two independent tasks at once on 2 cores; the predictor with enpact run's two threads (same float sums)
    assert resolved["train"]["cpus"] == 1 and resolved["gpu"]["cpus"] == 2
