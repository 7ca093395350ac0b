#!/usr/bin/env bash
# Fetch a Groovy 4 jar (for the static syntax check of .nf/.config files) from the npm registry: the
# npm-groovy-lint package ships one. `npm pack` downloads the tarball without running install scripts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dest=.cache/groovy
jar="$dest/groovy.jar"
[ -f "$jar" ] && exit 0
command -v npm >/dev/null || { echo "fetch-groovy: npm is required to fetch the Groovy parser" >&2; exit 1; }
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent npm-groovy-lint@18.0.0 >/dev/null)
tar -xzf "$tmp"/npm-groovy-lint-18.0.0.tgz -C "$tmp" package/lib/java/groovy/lib/groovy-4.0.26.jar
mv "$tmp/package/lib/java/groovy/lib/groovy-4.0.26.jar" "$jar"
echo "fetch-groovy: $jar" >&2
