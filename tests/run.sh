#!/usr/bin/env bash
# Installs everything the tests need (Python packages in .venv, Debian's
# chromium for the browser tests, postgresql for the PostgreSQL store tests
# and openssl for the TLS test) and runs the whole suite. Extra arguments go to pytest, e.g.
# `tests/run.sh -k ws` or `tests/run.sh --long`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
APT_UPDATED=""
apt_install() {
    [ -n "$APT_UPDATED" ] || $SUDO apt-get update -qq
    APT_UPDATED=1
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x /usr/bin/chromium ]; then
    echo "installing Debian's chromium for the browser tests" >&2
    apt_install chromium
fi

# openssl makes the test CA of tests/test_tls.py (a real HTTPS server on 127.0.0.1).
if ! command -v openssl >/dev/null 2>&1; then
    echo "installing Debian's openssl for the TLS tests" >&2
    apt_install openssl
fi

# A real PostgreSQL server for the PostgreSQL store tests (a throwaway cluster per session,
# made by tests/pg.py). Where it cannot be installed those tests are skipped, saying why.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "installing Debian's postgresql for the PostgreSQL store tests" >&2
    apt_install postgresql || echo "could not install postgresql: its tests will be skipped" >&2
fi

# axe-core (npm) checks the screens' accessibility in tests/browser/test_screens_a11y.py.
if [ ! -f tests/browser/node_modules/axe-core/axe.min.js ]; then
    echo "installing axe-core for the accessibility tests" >&2
    npm install --silent --prefix tests/browser --no-save --no-package-lock --no-audit --no-fund axe-core@4 >/dev/null
fi

# Lint and format checks first: they take a second and name the line.
.venv/bin/ruff check kds tests
.venv/bin/ruff format --check kds tests
# Types: strict on the core modules ([tool.mypy] files in pyproject.toml).
.venv/bin/mypy

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest exits 5 when it collected no tests (e.g. a -k that matches nothing).
if [ "$status" -eq 5 ]; then
    echo "no tests collected" >&2
    exit 0
fi
exit "$status"
