#!/usr/bin/env bash
# Set up EnPACT in a virtual environment (.venv by default).
#   scripts/setup.sh          runtime only (what `make demo` needs)
#   scripts/setup.sh --dev    plus test tools: pytest & co., bcftools/samtools/tabix, R glmnet, Java + Groovy parser
# Re-running is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1
venv="${ENPACT_VENV:-.venv}"
python="${PYTHON:-python3}"
# torch is installed first and on its own: a bare torch requirement resolved by pip pulls several GB of CUDA
# wheels. Override TORCH_SPEC (e.g. "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu").
torch_spec="${TORCH_SPEC:-torch==2.13.0}"

say() { printf 'setup: %s\n' "$*" >&2; }

# Each argument is "check-command=debian-package"; the package is installed only when the check fails.
apt_install() {
    local missing=()
    for pair in "$@"; do
        bash -c "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing system packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        say "please install these system packages first: ${missing[*]}"
        exit 1
    fi
}

if [ "$dev" = 1 ]; then
    apt_install "command -v bcftools=bcftools" "command -v tabix=tabix" "command -v samtools=samtools" \
        "Rscript -e 'library(glmnet)'=r-cran-glmnet" "command -v java=default-jre-headless" "command -v npm=npm"
fi

if [ ! -x "$venv/bin/python" ]; then
    say "creating virtual environment $venv"
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)

stamp="$venv/.enpact-setup"
want="$(cat requirements.txt requirements-test.txt pyproject.toml | sha256sum | cut -c1-16)-$dev-$torch_spec"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "environment up to date ($venv)"
else
    if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
        say "installing $torch_spec"
        # shellcheck disable=SC2086
        "${pip[@]}" $torch_spec
    fi
    say "installing pinned requirements"
    "${pip[@]}" -r requirements.txt
    [ "$dev" = 1 ] && "${pip[@]}" -r requirements-test.txt
    "${pip[@]}" --no-deps --no-build-isolation -e . 2>/dev/null || "${pip[@]}" --no-deps -e .
    echo "$want" > "$stamp"
fi

if [ "$dev" = 1 ]; then
    scripts/fetch-groovy.sh
fi
say "ready: $venv/bin/enpact"
