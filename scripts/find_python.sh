#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain and fail.
#
# Order: $PYTHON if set, python3.13, python3.12, python3 (each version-checked),
# then pyenv's versions directory (newest first). Used by the Makefile to
# create .venv; Django 6 does not run on older Pythons.
set -euo pipefail

ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
for name in python3.13 python3.12 python3; do
    path=$(command -v "$name" 2>/dev/null) && candidates+=("$path")
done
pyenv_root=${PYENV_ROOT:-}
if [ -z "$pyenv_root" ] && command -v pyenv >/dev/null 2>&1; then
    pyenv_root=$(pyenv root 2>/dev/null || true)
fi
[ -n "$pyenv_root" ] || pyenv_root=$HOME/.pyenv
if [ -d "$pyenv_root/versions" ]; then
    # Newest first: 3.13.x before 3.12.x.
    while IFS= read -r dir; do
        candidates+=("$dir/bin/python3")
    done < <(find "$pyenv_root/versions" -mindepth 1 -maxdepth 1 -name '3.*' | sort -rV)
fi

for candidate in "${candidates[@]}"; do
    if [ -x "$candidate" ] || command -v "$candidate" >/dev/null 2>&1; then
        if ok "$candidate"; then
            echo "$candidate"
            exit 0
        fi
    fi
done

cat >&2 <<'MSG'
error: no Python >= 3.12 found (Django 6 needs it).
Tried: $PYTHON, python3.13, python3.12, python3 and pyenv's versions directory.
Install Python 3.12 or 3.13 (e.g. `pyenv install 3.13`, or your OS package),
or point the Makefile at one: make PYTHON=/path/to/python3.13 ...
MSG
exit 1
