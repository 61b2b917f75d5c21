#!/usr/bin/env bash
# The one demo command: a real OpenID Provider (tests/idp/op.mjs), a sample app that shows the
# identity headers it receives (deploy/demo/upstream.mjs) and sso-proxy in front of it, all on
# 127.0.0.1. Prints the URL and the test users; Ctrl-C stops everything.
#
#   scripts/demo.sh            run until Ctrl-C
#   scripts/demo.sh --smoke    start, log in as alice with curl, check the page, stop
#
# Environment: DEMO_PROXY_PORT (4180), DEMO_OP_PORT (4190), DEMO_APP_PORT (4191),
# DEMO_PROXY_BIN (default: build target/release/sso-proxy).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# shellcheck source=scripts/common.sh
source scripts/common.sh

SMOKE=false
case "${1:-}" in
  --smoke) SMOKE=true ;;
  "") ;;
  *) die "usage: scripts/demo.sh [--smoke]" ;;
esac

PROXY_PORT=${DEMO_PROXY_PORT:-4180}
OP_PORT=${DEMO_OP_PORT:-4190}
APP_PORT=${DEMO_APP_PORT:-4191}
PROXY_URL="http://127.0.0.1:$PROXY_PORT"
OP_URL="http://127.0.0.1:$OP_PORT"

step "Packages"
if [ -z "${DEMO_PROXY_BIN:-}" ]; then
  ensure_apt_packages "${BUILD_PACKAGES[@]}" curl
else
  ensure_apt_packages curl
fi
ensure_node
ensure_idp_modules

if [ -z "${DEMO_PROXY_BIN:-}" ]; then
  step "Building sso-proxy (release)"
  cargo build --release --bin sso-proxy
  PROXY_BIN="$ROOT/target/release/sso-proxy"
else
  PROXY_BIN=$DEMO_PROXY_BIN
fi
[ -x "$PROXY_BIN" ] || die "no proxy binary at $PROXY_BIN"

WORK=$(mktemp -d -t sso-proxy-demo.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; echo "stopping ..."; exit 0' INT TERM

# A random alphanumeric string of length $1 (secrets are generated, never stored in the repo).
random() {
  local s
  # tr ends on SIGPIPE once head has enough: not an error here.
  s=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom 2>/dev/null | head -c "$1") || true
  printf '%s' "$s"
}

# Wait until file $1 has a line starting with READY (process $2 must stay alive).
wait_ready() {
  local file=$1 pid=$2 what=$3 i
  for i in $(seq 1 200); do
    grep -q '^READY ' "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$WORK"/*.log >&2; die "$what exited"; }
    sleep 0.1
  done
  die "$what did not start"
}

for port in "$PROXY_PORT" "$OP_PORT" "$APP_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is already in use (set DEMO_PROXY_PORT / DEMO_OP_PORT / DEMO_APP_PORT)"
  fi
done

CLIENT_ID=sso-proxy-demo
CLIENT_SECRET=$(random 40)
SESSION_SECRET=$(random 48)

step "Starting the sample app on 127.0.0.1:$APP_PORT"
node deploy/demo/upstream.mjs "$APP_PORT" >"$WORK/app.out" 2>"$WORK/app.log" &
PIDS+=($!)
wait_ready "$WORK/app.out" "$!" "the sample app"

step "Starting the OpenID Provider on $OP_URL"
CLIENTS=$(printf '[{"client_id":"%s","client_secret":"%s","redirect_uris":["%s/callback_local"],"post_logout_redirect_uris":["%s/"]}]' \
  "$CLIENT_ID" "$CLIENT_SECRET" "$PROXY_URL" "$PROXY_URL")
OP_CLIENTS=$CLIENTS node tests/idp/op.mjs "$OP_PORT" >"$WORK/op.out" 2>"$WORK/op.log" &
PIDS+=($!)
wait_ready "$WORK/op.out" "$!" "the OpenID Provider"

step "Starting sso-proxy on $PROXY_URL"
cat >"$WORK/sso-proxy.yaml" <<YAML
listen: 127.0.0.1:$PROXY_PORT
upstream: http://127.0.0.1:$APP_PORT
public_url: $PROXY_URL
session:
  secret: "$SESSION_SECRET"
  store: memory
log:
  level: info
providers:
  local:
    protocol: oidc
    provider: custom
    display_name: Demo OpenID Provider
    issuer: $OP_URL
    client_id: $CLIENT_ID
    client_secret: "$CLIENT_SECRET"
    idp_logout: true
    groups:
      enabled: true
      admins: [admins]
YAML
(cd "$WORK" && exec "$PROXY_BIN" --config "$WORK/sso-proxy.yaml") >"$WORK/proxy.log" 2>&1 &
PIDS+=($!)
PROXY_PID=$!
for i in $(seq 1 200); do
  curl -fsS -o /dev/null "$PROXY_URL/_sso/readyz" 2>/dev/null && break
  kill -0 "$PROXY_PID" 2>/dev/null || { cat "$WORK/proxy.log" >&2; die "sso-proxy exited"; }
  [ "$i" -lt 200 ] || { cat "$WORK/proxy.log" >&2; die "sso-proxy did not become ready"; }
  sleep 0.1
done

if $SMOKE; then
  step "Smoke test: logging in as alice with curl"
  jar="$WORK/cookies.txt"
  nav=(-s -c "$jar" -b "$jar" -H 'Accept: text/html' -H 'Sec-Fetch-Mode: navigate')
  form_url=$(curl "${nav[@]}" -L -o "$WORK/form.html" -w '%{url_effective}' "$PROXY_URL/")
  action=$(grep -o 'action="[^"]*"' "$WORK/form.html" | head -n1 | cut -d'"' -f2)
  [ -n "$action" ] || die "no login form at $form_url"
  curl "${nav[@]}" -L -o "$WORK/app.html" --data-urlencode login=alice \
    --data-urlencode password=alice-pw "$OP_URL$action"
  grep -q 'Hello, Alice Liddell' "$WORK/app.html" || die "the app did not greet alice"
  grep -q 'admins,ml-team' "$WORK/app.html" || die "the app did not get alice's groups"
  curl -s -b "$jar" "$PROXY_URL/_sso/userinfo" | grep -q '"user":"alice"' \
    || die "/_sso/userinfo does not show alice"
  echo "smoke test passed: the app received alice's identity through sso-proxy"
  exit 0
fi

cat <<TXT

  sso-proxy demo is running.

    Open:       $PROXY_URL/
    Identity:   $PROXY_URL/_sso/userinfo
    Sign out:   $PROXY_URL/_sso/logout

    Users (OpenID Provider at $OP_URL):
      alice / alice-pw   groups admins, ml-team (admin)
      bob   / bob-pw     groups ml-team
      carol / carol-pw   no groups, e-mail not verified

    Logs: $WORK/{proxy,op,app}.log
    Press Ctrl-C to stop.

TXT
wait "$PROXY_PID"
echo "sso-proxy stopped; see the log above" >&2
cat "$WORK/proxy.log" >&2
exit 1
