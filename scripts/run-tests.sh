#!/usr/bin/env bash
# The project's test command (run by `make test` and CI): pytest for the package, the static Nextflow checks
# and the CLI contract test (inside pytest), then nf-test when Nextflow is installed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${ENPACT_VENV:-.venv}"
export PATH="$PWD/$venv/bin:$PATH"

"$venv/bin/python" -m pytest "$@"
status=$?

if command -v nextflow >/dev/null && command -v nf-test >/dev/null; then
    nf-test test --ci --profile=+test,venv || status=1
else
    echo "nf-test: skipped: nextflow not installed (the static .nf checks and the CLI contract test ran in pytest)"
fi
exit $status
