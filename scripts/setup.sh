#!/usr/bin/env bash
# Set up EnPACT in a virtual environment (.venv by default).
#   scripts/setup.sh          runtime only (what `make demo` needs)
#   scripts/setup.sh --dev    plus test tools: pytest & co., bcftools/samtools/tabix, R glmnet, Java + Groovy parser
# Needs python3 >= 3.10 with its venv module (Debian/Ubuntu: the python3-venv package). Run as root on
# Debian/Ubuntu, it installs missing system packages itself; otherwise it names them in one line and stops.
# Re-running is cheap: each step is skipped when already done (a --dev set-up also counts as a runtime one).
# Environment: PYTHON (interpreter the venv is made from, default python3), ENPACT_VENV (default .venv),
# TORCH_SPEC (see below).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1
venv="${ENPACT_VENV:-.venv}"
python="${PYTHON:-python3}"
min_python=3.10
# torch is installed first and on its own: a bare torch requirement resolved by pip pulls several GB of CUDA
# wheels. Override TORCH_SPEC (e.g. "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu").
torch_spec="${TORCH_SPEC:-torch==2.13.0}"

say() { printf 'setup: %s\n' "$*" >&2; }

# "12s" or "2m05s" since the SECONDS value $1
took() {
    local s=$((SECONDS - $1))
    if [ "$s" -ge 60 ]; then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

# Install Debian packages when root on a system with apt-get; otherwise stop with one line naming them.
apt_get_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        local started=$SECONDS
        say "installing system packages: $* (apt-get) ..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
        say "system packages installed in $(took "$started")"
    else
        say "${reason:+$reason: }please install these system packages first: $*" \
            "(Debian/Ubuntu: sudo apt-get install $*), then run this again"
        exit 1
    fi
}

# Each argument is "check-command=debian-package"; the package is installed only when the check fails.
apt_install() {
    local missing=()
    for pair in "$@"; do
        bash -c "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    reason="" apt_get_install "${missing[@]}"
}

# "3.11.2" for an interpreter, or nothing if it does not run
python_version() {
    "$1" -c 'import sys; print("%d.%d.%d" % tuple(sys.version_info[:3]))' 2>/dev/null || true
}

# at least $min_python?
new_enough() {
    local major minor want_major want_minor
    IFS=. read -r major minor _ <<<"$1"
    IFS=. read -r want_major want_minor <<<"$min_python"
    [ -n "$major" ] && [ -n "$minor" ] || return 1
    [ "$major" -gt "$want_major" ] || { [ "$major" -eq "$want_major" ] && [ "$minor" -ge "$want_minor" ]; }
}

# Debian ships ensurepip (which `python3 -m venv` needs to put pip into the venv) in python3-venv; without it
# venv creation fails half-way. pip itself comes with ensurepip: the python3-pip package is not needed.
has_venv() { "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; }

# The Debian package with the venv module of $python (version $1): python3-venv for Debian's default python3,
# python3.X-venv for another version.
venv_package() {
    local default
    default="$(python_version /usr/bin/python3)"
    if [ -z "$default" ] || [ "${default%.*}" = "${1%.*}" ]; then echo python3-venv; else echo "python${1%.*}-venv"; fi
}

# The interpreter the venv is made from: python >= 3.10 with venv + ensurepip; missing Debian packages are
# installed as root, named otherwise.
check_python() {
    if ! command -v "$python" >/dev/null 2>&1; then
        [ "$python" = python3 ] || { say "PYTHON=$python: not found"; exit 1; }
        reason="python3 not found" apt_get_install python3 python3-venv
        command -v python3 >/dev/null 2>&1 || { say "python3 still not found after installing python3"; exit 1; }
    fi
    version="$(python_version "$python")"
    if [ -z "$version" ]; then
        say "$python does not run (set PYTHON to a Python >= $min_python)"
        exit 1
    fi
    if ! new_enough "$version"; then
        say "EnPACT needs Python >= $min_python, but $python is $version: install a newer Python" \
            "(Debian 12 and Ubuntu 22.04 have one) and run this again with PYTHON=/path/to/python3.X"
        exit 1
    fi
    if ! has_venv; then
        reason="$python ($version) has no venv module with ensurepip" apt_get_install "$(venv_package "$version")"
        if ! has_venv; then
            say "$python ($version) still has no venv module with ensurepip after installing $(venv_package "$version")"
            exit 1
        fi
    fi
}

# A usable venv: its python runs, is new enough and has pip (a venv whose creation failed half-way has none).
venv_ok() {
    [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import pip' >/dev/null 2>&1 &&
        new_enough "$(python_version "$venv/bin/python")"
}

if ! venv_ok; then
    check_python
    clear=()
    if [ -f "$venv/pyvenv.cfg" ]; then
        say "re-creating virtual environment $venv with $python ($version): the one there has no pip or an old Python"
        clear=(--clear)
    else
        say "creating virtual environment $venv with $python ($version)"
    fi
    "$python" -m venv ${clear[@]+"${clear[@]}"} "$venv"
fi

if [ "$dev" = 1 ]; then
    apt_install "command -v bcftools=bcftools" "command -v tabix=tabix" "command -v samtools=samtools" \
        "Rscript -e 'library(glmnet)'=r-cran-glmnet" "command -v java=default-jre-headless" "command -v npm=npm"
fi

pip=("$venv/bin/python" -m pip install --disable-pip-version-check)

installed=0
stamp="$venv/.enpact-setup"
inputs="$(cat requirements.txt requirements-test.txt requirements-test-nodeps.txt pyproject.toml | sha256sum | cut -c1-16)"
want="$inputs-$dev-$torch_spec"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$have" = "$want" ] || [ "$have" = "$inputs-1-$torch_spec" ]; then
    say "environment up to date ($venv)"
else
    if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
        # Measured on a 2-core machine from a local wheel: 15-40 s (13 s of CPU); the CPU wheel is 192 MB.
        size="the CPU build is ~190 MB to download and 15-40 s to install on 2 cores"
        if [ "$(uname -s)" = Linux ] && [[ "$torch_spec" != *--index-url* ]]; then
            size="$size; but from PyPI on Linux pip takes the CUDA build, several GB: for CPU only set"
            size="$size TORCH_SPEC=\"$torch_spec --index-url https://download.pytorch.org/whl/cpu\""
        fi
        say "installing $torch_spec ($size) ..."
        started=$SECONDS
        # not --quiet: pip names what it downloads, with a progress bar on a terminal
        # shellcheck disable=SC2086
        "${pip[@]}" --progress-bar on $torch_spec
        say "torch installed in $(took "$started")"
    fi
    started=$SECONDS
    say "installing $(grep -c '^[A-Za-z]' requirements.txt) pinned packages of requirements.txt" \
        "(~250 MB to download, 40-60 s to install on 2 cores) ..."
    "${pip[@]}" --quiet -r requirements.txt
    if [ "$dev" = 1 ]; then
        say "installing the test tools of requirements-test.txt (~5 MB, a few seconds) ..."
        "${pip[@]}" --quiet -r requirements-test.txt
        "${pip[@]}" --quiet --no-deps -r requirements-test-nodeps.txt   # reference code only (tests/test_finemap.py)
    fi
    "${pip[@]}" --quiet --no-deps --no-build-isolation -e . 2>/dev/null || "${pip[@]}" --quiet --no-deps -e .
    say "packages installed in $(took "$started")"
    echo "$want" > "$stamp"
    installed=1
fi

if [ "$dev" = 1 ]; then
    scripts/fetch-groovy.sh
fi

# `enpact` lives in the venv: say how to reach it (in full after an installation, in one line otherwise).
bin="$(cd "$venv/bin" && pwd)"
say "ready: $bin/enpact"
if [ "$(command -v enpact 2>/dev/null)" != "$bin/enpact" ]; then
    if [ "$installed" = 1 ]; then
        say "enpact is not on your PATH yet. Either, in each new shell:  source $bin/activate"
        say "  or once for all shells (add it to ~/.bashrc):  export PATH=\"$bin:\$PATH\""
        say "  or through make, from $(pwd):  make run PARAMS=params.yaml"
    else
        say "to type \`enpact ...\`: source $bin/activate  (or: make run PARAMS=params.yaml)"
    fi
fi
