#!/usr/bin/env bash
# Regenerate requirements.lock and requirements-dev.lock from pyproject.toml.
#
#   scripts/lock.sh [PYTHON]        (or: make lock)
#
# Runs pip-compile (pip-tools) in a throwaway venv so the project venv is left
# alone. The direct dependencies are read from pyproject.toml into a temporary
# requirements.in: the project itself is not an installable package (flat
# layout, several top-level apps), so pip-compile cannot build it.
set -euo pipefail

cd "$(dirname "$0")/.."
python=${1:-${PYTHON:-python3}}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$python" - "$tmp" <<'PY'
import sys
import tomllib
from pathlib import Path

if sys.version_info < (3, 12):
    sys.exit(f"scripts/lock.sh needs Python >= 3.12, got {sys.version.split()[0]}")
out = Path(sys.argv[1])
project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
runtime = project["dependencies"]
dev = project["optional-dependencies"]["dev"]
(out / "requirements.in").write_text("\n".join(runtime) + "\n")
(out / "requirements-dev.in").write_text("\n".join(runtime + dev) + "\n")
PY

"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet pip-tools

compile() {
    local src=$1 dest=$2
    (
        cd "$tmp"
        CUSTOM_COMPILE_COMMAND="make lock" venv/bin/pip-compile \
            --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
            --resolver=backtracking --output-file "$dest" "$src"
    )
    # pip-compile names the temporary input file; say where it really comes from.
    sed -i "s|-r $src|pyproject.toml|; s|# via -r .*|# via pyproject.toml|" "$tmp/$dest"
    cp "$tmp/$dest" "$dest"
    echo "wrote $dest ($(grep -c '==' "$dest") pins)"
}

compile requirements.in requirements.lock
compile requirements-dev.in requirements-dev.lock
