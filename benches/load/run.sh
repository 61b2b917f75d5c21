#!/usr/bin/env bash
# The load benchmark of issue 7, in one command:
#
#     benches/load/run.sh
#
# All servers run on 127.0.0.1 under a temporary directory and are stopped at the end:
#   upstream   nginx serving a small static page; it echoes the X-Forwarded-User it received
#              in an `X-Seen-User` response header, which proves identity headers reach it
#   nginx      nginx `proxy_pass` in front of the upstream, no authentication
#   apache     Apache 2 + Debian's mod_auth_openidc in front of the upstream (logged in)
#   sso-proxy  the release build, memory store, logged in
#   op         the real oidc-provider (tests/idp/op.mjs), for both proxies' logins
#   fast-op    a Rust OP signing with a cached key (benches/load/fast_op.rs), for the ceiling
#
# Steps: 200-checks of every target, wrk interleaved for ROUNDS rounds, login throughput
# (sso-proxy and mod_auth_openidc against the real OP, sso-proxy against the fast OP), memory per
# session. Figures go to bench-results/results.json and bench-results/results.md.
#
# Knobs (environment): ROUNDS=5 DURATION=10 WRK_THREADS=1 WRK_CONNS=32 LAT_CONNS=4 LAT_DURATION=5
# LOGINS=1000 LOGIN_C=8
# LOGIN_ROUNDS=2 FAST_LOGINS=20000 FAST_C=32 FAST_SECONDS=30 SESSIONS=100000 SKIP_BUILD=0
# SSO_THREADS=1 (sso-proxy's `threads`: on 2 CPUs shared with wrk, nginx, Apache and the OPs,
# one data-path thread switches less and has the lower latency; empty = the CPU count)
set -euo pipefail

ROUNDS=${ROUNDS:-5}
SSO_THREADS=${SSO_THREADS-1}
DURATION=${DURATION:-10}
WRK_THREADS=${WRK_THREADS:-1}
WRK_CONNS=${WRK_CONNS:-32}
LAT_CONNS=${LAT_CONNS:-4}
LAT_DURATION=${LAT_DURATION:-5}
LOGINS=${LOGINS:-1000}
LOGIN_C=${LOGIN_C:-8}
LOGIN_ROUNDS=${LOGIN_ROUNDS:-2}
FAST_LOGINS=${FAST_LOGINS:-20000}
FAST_C=${FAST_C:-32}
FAST_SECONDS=${FAST_SECONDS:-30}
FAST_ALG=${FAST_ALG:-ES256}
SESSIONS=${SESSIONS:-100000}
SKIP_BUILD=${SKIP_BUILD:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=$ROOT/bench-results
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/sso-bench.XXXXXX)
chmod 755 "$WORK"
RAW=$WORK/raw
mkdir -p "$RAW"
PIDS=()

log() { printf '\033[1m[bench %s]\033[0m %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

cleanup() {
    local pid
    # Only the processes this script started. sso-proxy (pingora) stops at once on SIGINT.
    for pid in "${PIDS[@]}"; do
        kill -INT "$pid" 2>/dev/null || true
    done
    local deadline=$((SECONDS + 5))
    for pid in "${PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [[ -n ${KEEP_WORK:-} ]]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- tools
need_pkgs=()
command -v nginx >/dev/null || need_pkgs+=(nginx)
command -v apache2 >/dev/null || need_pkgs+=(apache2)
[[ -f /usr/lib/apache2/modules/mod_auth_openidc.so ]] || need_pkgs+=(libapache2-mod-auth-openidc)
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v node >/dev/null || need_pkgs+=(nodejs npm)
if ((${#need_pkgs[@]})); then
    log "installing ${need_pkgs[*]}"
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
if [[ ! -d tests/idp/node_modules/oidc-provider ]]; then
    log "installing the test OP's node modules"
    (cd tests/idp && npm ci --silent)
fi

if [[ $SKIP_BUILD != 1 ]]; then
    log "building sso-proxy (release) and the benchmark tools"
    cargo build --release --bin sso-proxy >&2
fi
TOOLS=$(cargo bench --bench load_tools --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "load_tools" and m.get("executable"):
        print(m["executable"])')
[[ -x $TOOLS ]] || die "could not build the load_tools bench target"
SSO_BIN=$ROOT/target/release/sso-proxy
[[ -x $SSO_BIN ]] || die "no $SSO_BIN (cargo build --release --bin sso-proxy)"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_http() { # url [expected status regex]
    local url=$1 want=${2:-'^[2-4]'} i code
    for i in $(seq 1 100); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)
        [[ $code =~ $want ]] && return 0
        sleep 0.1
    done
    die "$url never answered ($code)"
}

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
P_UP=$(free_port); P_NGX=$(free_port); P_APACHE=$(free_port); P_SSO=$(free_port)
P_SSOF=$(free_port); P_OP=$(free_port); P_FOP=$(free_port)
SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '\n=+/')

# ---------------------------------------------------------------- nginx: upstream + proxy_pass
mkdir -p "$WORK/nginx/html" "$WORK/nginx/tmp"
chmod -R 777 "$WORK/nginx/tmp"
# A small static page (~600 bytes), readable by nginx's unprivileged workers.
python3 -c 'print("<!DOCTYPE html><html><head><title>upstream</title></head><body>" + "<p>Hello from the benchmark upstream.</p>" * 12 + "</body></html>")' \
    >"$WORK/nginx/html/index.html"
chmod -R a+rX "$WORK/nginx/html"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$P_UP;
        root $WORK/nginx/html;
        index index.html;
        # Proves what the proxy in front passed on (empty header values are not sent).
        add_header X-Seen-User \$http_x_forwarded_user always;
        add_header X-Seen-Email \$http_x_forwarded_email always;
    }
    upstream app { server 127.0.0.1:$P_UP; keepalive 128; }
    server {
        listen 127.0.0.1:$P_NGX;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx/stderr" &
PIDS+=($!); NGINX_PID=$!; disown
wait_http "http://127.0.0.1:$P_UP/" '^200$'
wait_http "http://127.0.0.1:$P_NGX/" '^200$'

# ---------------------------------------------------------------- the real OP
CLIENTS=$(cat <<EOF
[{"client_id":"proxy","client_secret":"proxy-secret","redirect_uris":["http://127.0.0.1:$P_SSO/callback_local"]},
 {"client_id":"apache","client_secret":"apache-secret","redirect_uris":["http://127.0.0.1:$P_APACHE/redirect_uri"]}]
EOF
)
node tests/idp/op.mjs "$P_OP" "$CLIENTS" >"$WORK/op.out" 2>"$WORK/op.err" &
PIDS+=($!); OP_PID=$!; disown
for _ in $(seq 1 100); do grep -q READY "$WORK/op.out" && break; sleep 0.1; done
grep -q READY "$WORK/op.out" || die "the test OP did not start: $(cat "$WORK/op.err")"

# ---------------------------------------------------------------- the fast OP
"$TOOLS" fast-op --port "$P_FOP" --alg "$FAST_ALG" --client-id proxy --client-secret proxy-secret \
    >"$WORK/fast-op.out" 2>"$WORK/fast-op.err" &
PIDS+=($!); FOP_PID=$!; disown
for _ in $(seq 1 100); do grep -q READY "$WORK/fast-op.out" && break; sleep 0.1; done
grep -q READY "$WORK/fast-op.out" || die "the fast OP did not start: $(cat "$WORK/fast-op.err")"

# ---------------------------------------------------------------- sso-proxy (x2)
start_sso() { # name port issuer
    local name=$1 port=$2 issuer=$3
    cat >"$WORK/$name.yaml" <<EOF
listen: 127.0.0.1:$port
upstream: http://127.0.0.1:$P_UP
public_url: http://127.0.0.1:$port
session: { secret: "$SECRET", store: memory }
state: { path: ":memory:" }
log: { level: warn }
${SSO_THREADS:+threads: $SSO_THREADS}
providers:
  local:
    protocol: oidc
    display_name: Local
    issuer: "$issuer"
    client_id: proxy
    client_secret: proxy-secret
EOF
    "$SSO_BIN" --config "$WORK/$name.yaml" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    eval "${name//-/_}_PID=$!"
    disown
    for _ in $(seq 1 100); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/_sso/readyz") == 200 ]] && return 0
        sleep 0.1
    done
    die "$name not ready: $(tail -5 "$WORK/$name.log")"
}
start_sso sso "$P_SSO" "http://127.0.0.1:$P_OP"
start_sso sso-fast "$P_SSOF" "http://127.0.0.1:$P_FOP"
SSO_PID=$sso_PID; SSOF_PID=$sso_fast_PID

# ---------------------------------------------------------------- Apache + mod_auth_openidc
A=$WORK/apache
mkdir -p "$A"
M=/usr/lib/apache2/modules
APACHE_USER=""
if [[ $(id -u) -eq 0 ]]; then APACHE_USER="User www-data
Group www-data"; fi
cat >"$A/httpd.conf" <<EOF
ServerRoot "$A"
ServerName 127.0.0.1
Listen 127.0.0.1:$P_APACHE
PidFile "$A/httpd.pid"
DefaultRuntimeDir "$A"
Mutex file:$A default
ErrorLog "$A/error.log"
LogLevel warn
$APACHE_USER
LoadModule mpm_event_module $M/mod_mpm_event.so
LoadModule authn_core_module $M/mod_authn_core.so
LoadModule authz_core_module $M/mod_authz_core.so
LoadModule authz_user_module $M/mod_authz_user.so
LoadModule headers_module $M/mod_headers.so
LoadModule proxy_module $M/mod_proxy.so
LoadModule proxy_http_module $M/mod_proxy_http.so
LoadModule auth_openidc_module $M/mod_auth_openidc.so
# Debian's mpm_event defaults, keep-alive without a request cap (as nginx and sso-proxy here).
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30

OIDCProviderMetadataURL http://127.0.0.1:$P_OP/.well-known/openid-configuration
OIDCClientID apache
OIDCClientSecret apache-secret
OIDCRedirectURI http://127.0.0.1:$P_APACHE/redirect_uri
OIDCCryptoPassphrase $SECRET
OIDCScope "openid email profile"
OIDCPKCEMethod S256
OIDCRemoteUserClaim sub
OIDCPassClaimsAs environment
OIDCSessionInactivityTimeout 3600
OIDCSessionMaxDuration 43200

<Location />
    AuthType openid-connect
    Require valid-user
    # The same identity headers sso-proxy sends (client copies are replaced).
    RequestHeader set X-Forwarded-User "%{OIDC_CLAIM_sub}e"
    RequestHeader set X-Forwarded-Email "%{OIDC_CLAIM_email}e"
    RequestHeader set X-Forwarded-Preferred-Username "%{OIDC_CLAIM_preferred_username}e"
    RequestHeader set X-Forwarded-Groups "%{OIDC_CLAIM_groups}e"
    RequestHeader set X-Forwarded-Name "%{OIDC_CLAIM_name}e"
</Location>
ProxyPass /redirect_uri !
ProxyPass / http://127.0.0.1:$P_UP/
ProxyPassReverse / http://127.0.0.1:$P_UP/
EOF
[[ -n $APACHE_USER ]] && chown www-data "$A"
apache2 -f "$A/httpd.conf" -DFOREGROUND >"$A/stderr" 2>&1 &
PIDS+=($!); APACHE_PID=$!; disown
wait_http "http://127.0.0.1:$P_APACHE/" '^30[23]$'

# ---------------------------------------------------------------- log in once, then 200-checks
login_cookie() { # target-url -> Cookie header for wrk
    "$TOOLS" login --target "$1" --expect-header x-seen-user=alice --print-cookie
}
COOKIE_SSO=$(login_cookie "http://127.0.0.1:$P_SSO/") || die "login through sso-proxy failed"
COOKIE_APACHE=$(login_cookie "http://127.0.0.1:$P_APACHE/") || die "login through Apache failed"
COOKIE_SSOF=$(login_cookie "http://127.0.0.1:$P_SSOF/") || die "login through sso-proxy (fast OP) failed"
[[ $COOKIE_SSO == *sso_session=* ]] || die "no sso-proxy session cookie: $COOKIE_SSO"
[[ $COOKIE_APACHE == *mod_auth_openidc_session=* ]] || die "no mod_auth_openidc session cookie: $COOKIE_APACHE"

# name url cookie expected-X-Seen-User
TARGETS=(
    "upstream|http://127.0.0.1:$P_UP/||"
    "nginx|http://127.0.0.1:$P_NGX/||"
    "apache|http://127.0.0.1:$P_APACHE/|$COOKIE_APACHE|alice"
    "sso-proxy|http://127.0.0.1:$P_SSO/|$COOKIE_SSO|alice"
)
check_target() { # name url cookie want -> prints the response size (headers + body)
    local name=$1 url=$2 cookie=$3 want=$4 hdr code seen size
    hdr=$WORK/check-$name.hdr
    # Exactly the request wrk sends: its size tells a 200 page from a redirect later.
    size=$(curl -s -o /dev/null -D "$hdr" -w '%{size_header} %{size_download}' \
        ${cookie:+-H "Cookie: $cookie"} "$url")
    code=$(head -1 "$hdr" | awk '{print $2}')
    [[ $code == 200 ]] || die "$name answered $code, not 200"
    if [[ -n $want ]]; then
        seen=$(grep -i '^x-seen-user:' "$hdr" | cut -d' ' -f2- | tr -d '\r' || true)
        [[ $seen == "$want" ]] || die "$name: the upstream saw X-Forwarded-User='$seen', want '$want'"
        # A client-sent identity must never get through.
        seen=$(curl -s -o /dev/null -D - -H "Cookie: $cookie" -H 'X-Forwarded-User: mallory' \
            -H 'X_Forwarded_User: mallory' "$url" | grep -i '^x-seen-user:' | cut -d' ' -f2- | tr -d '\r' || true)
        [[ $seen == "$want" ]] || die "$name: a client-sent X-Forwarded-User reached the upstream ('$seen')"
    fi
    echo $((${size% *} + ${size#* }))
}
declare -A RESP_SIZE
for t in "${TARGETS[@]}"; do
    IFS='|' read -r name url cookie want <<<"$t"
    RESP_SIZE[$name]=$(check_target "$name" "$url" "$cookie" "$want")
    log "check: $name answers 200${want:+ and the upstream sees X-Forwarded-User: $want} (${RESP_SIZE[$name]} bytes)"
done
# Without a session the protected targets must not answer 200.
for t in "apache|http://127.0.0.1:$P_APACHE/" "sso-proxy|http://127.0.0.1:$P_SSO/"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: text/html' "${t#*|}")
    [[ $code == 302 ]] || die "${t%%|*} without a session answered $code, want 302"
done

# ---------------------------------------------------------------- wrk, interleaved
cat >"$WORK/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
EOF
log "wrk: $ROUNDS rounds x ${#TARGETS[@]} targets: -t$WRK_THREADS -c$WRK_CONNS for ${DURATION}s, then -c$LAT_CONNS for ${LAT_DURATION}s"
: >"$RAW/wrk.jsonl"
for t in "${TARGETS[@]}"; do # warm-up (connection pools, caches)
    IFS='|' read -r name url cookie want <<<"$t"
    wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d2s ${cookie:+-H "Cookie: $cookie"} "$url" >/dev/null
done
run_wrk() { # phase round name url cookie conns seconds
    local phase=$1 round=$2 name=$3 url=$4 cookie=$5 conns=$6 secs=$7 line
    line=$(wrk -t"$WRK_THREADS" -c"$conns" -d"${secs}s" --latency -s "$WORK/report.lua" \
        ${cookie:+-H "Cookie: $cookie"} "$url" | grep '^WRKJSON ' | cut -d' ' -f2-)
    [[ -n $line ]] || die "wrk gave no result for $name"
    echo "{\"phase\":\"$phase\",\"round\":$round,\"target\":\"$name\",\"response_bytes\":${RESP_SIZE[$name]},\"loadavg\":\"$(cut -d' ' -f1 /proc/loadavg)\",\"wrk\":$line}" >>"$RAW/wrk.jsonl"
    log "round $round $phase $name: $(python3 "$ROOT/benches/load/report.py" --wrk-line "$line")"
}
for round in $(seq 1 "$ROUNDS"); do
    # Throughput: enough connections to saturate the machine.
    for t in "${TARGETS[@]}"; do
        IFS='|' read -r name url cookie want <<<"$t"
        run_wrk throughput "$round" "$name" "$url" "$cookie" "$WRK_CONNS" "$DURATION"
    done
    # Latency: a few connections, so the figures are the per-request path, not queueing.
    for t in "${TARGETS[@]}"; do
        IFS='|' read -r name url cookie want <<<"$t"
        run_wrk latency "$round" "$name" "$url" "$cookie" "$LAT_CONNS" "$LAT_DURATION"
    done
done
# The sessions must still be valid after the runs.
for t in "${TARGETS[@]}"; do
    IFS='|' read -r name url cookie want <<<"$t"
    check_target "$name" "$url" "$cookie" "$want" >/dev/null
done

# ---------------------------------------------------------------- login throughput
: >"$RAW/logins.jsonl"
run_logins() { # label target count concurrency max-seconds cpu-args...
    local label=$1 target=$2 count=$3 conc=$4 secs=$5
    shift 5
    local line
    line=$("$TOOLS" login --target "$target" --count "$count" --concurrency "$conc" \
        --max-seconds "$secs" --expect-header x-seen-user=alice "$@") || die "login driver failed for $label"
    echo "{\"label\":\"$label\",\"result\":$line}" >>"$RAW/logins.jsonl"
    log "logins $label: $(python3 "$ROOT/benches/load/report.py" --login-line "$line")"
}
log "logins against the real OP: $LOGIN_ROUNDS rounds x $LOGINS logins, concurrency $LOGIN_C"
for round in $(seq 1 "$LOGIN_ROUNDS"); do
    run_logins "sso-proxy/op#$round" "http://127.0.0.1:$P_SSO/" "$LOGINS" "$LOGIN_C" 120 \
        --cpu "proxy=$SSO_PID" --cpu "op=$OP_PID"
    run_logins "apache/op#$round" "http://127.0.0.1:$P_APACHE/" "$LOGINS" "$LOGIN_C" 120 \
        --cpu "proxy=$APACHE_PID" --cpu "op=$OP_PID"
done
log "logins against the fast OP: up to $FAST_LOGINS in ${FAST_SECONDS}s, concurrency $FAST_C"
run_logins "warm-up/sso-proxy/fast-op" "http://127.0.0.1:$P_SSOF/" 200 "$FAST_C" 30
run_logins "sso-proxy/fast-op" "http://127.0.0.1:$P_SSOF/" "$FAST_LOGINS" "$FAST_C" "$FAST_SECONDS" \
    --cpu "proxy=$SSOF_PID" --cpu "op=$FOP_PID" --rss "proxy=$SSOF_PID"

# ---------------------------------------------------------------- memory per session
log "memory: $SESSIONS sessions per variant"
"$TOOLS" memory --sessions "$SESSIONS" --variant all >"$RAW/memory.jsonl"

# ---------------------------------------------------------------- report
{
    echo "{\"nproc\":$(nproc),\"loadavg_start\":\"$LOADAVG_START\","
    echo "\"cpu_model\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\","
    echo "\"mem_total_kb\":$(awk '/MemTotal/{print $2}' /proc/meminfo),"
    echo "\"kernel\":\"$(uname -r)\","
    echo "\"loadavg_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\","
    echo "\"versions\":{\"nginx\":\"$(nginx -v 2>&1 | cut -d/ -f2)\",\"apache\":\"$(apache2 -v | head -1 | cut -d/ -f2 | cut -d' ' -f1)\","
    echo "\"mod_auth_openidc\":\"$(dpkg-query -W -f='${Version}' libapache2-mod-auth-openidc 2>/dev/null || echo unknown)\","
    echo "\"wrk\":\"$(wrk -v 2>&1 | head -1 | awk '{print $2}')\",\"node\":\"$(node --version)\","
    echo "\"sso_proxy_commit\":\"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo +dirty)\"},"
    echo "\"settings\":{\"rounds\":$ROUNDS,\"duration_s\":$DURATION,\"wrk_threads\":$WRK_THREADS,\"wrk_conns\":$WRK_CONNS,"
    echo "\"lat_conns\":$LAT_CONNS,\"lat_duration_s\":$LAT_DURATION,"
    echo "\"logins\":$LOGINS,\"login_concurrency\":$LOGIN_C,\"login_rounds\":$LOGIN_ROUNDS,\"fast_logins\":$FAST_LOGINS,"
    echo "\"fast_concurrency\":$FAST_C,\"fast_seconds\":$FAST_SECONDS,\"fast_alg\":\"$FAST_ALG\",\"sessions\":$SESSIONS}}"
} >"$RAW/machine.json"
python3 "$ROOT/benches/load/report.py" "$RAW" "$OUT"
log "wrote $OUT/results.json and $OUT/results.md"
cat "$OUT/results.md"
