#!/usr/bin/env bash
# Runs the HTTP caching test suite (npm http-cache-tests, cache-tests.fyi) through
# examples/reverse_proxy.rs in shared mode with the memory backend (and 60 s of
# stale-if-error for responses that name none), then scores the
# run and gates it against conformance/baseline.json (see conformance/score.mjs).
#
#   bash conformance/run.sh                       # run, score, gate
#   UPDATE_BASELINE=1 bash conformance/run.sh     # run, score, rewrite the baseline
#   bash conformance/run.sh --id=freshness-none   # one test, verbose; no scoring
#
# Environment: CONFORMANCE_DIR (scratch folder, default target/conformance),
# ORIGIN_PORT (default 8000), PROXY_PORT (default 8080). Needs node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.4.5
scratch=${CONFORMANCE_DIR:-target/conformance}
origin_port=${ORIGIN_PORT:-8000}
proxy_port=${PROXY_PORT:-8080}
proxy_bin=${CARGO_TARGET_DIR:-target}/release/examples/reverse_proxy
one_test=
case "${1:-}" in
  --id=*) one_test=$1 ;;
  "") ;;
  *) echo "usage: bash conformance/run.sh [--id=TEST-ID]" >&2; exit 2 ;;
esac

step() { printf '\n==> %s\n' "$*"; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for cmd in node npm cargo; do
  command -v "$cmd" >/dev/null || { echo "$cmd is not installed" >&2; exit 1; }
done
for port in "$origin_port" "$proxy_port"; do
  if listening "$port"; then
    echo "port $port is already in use: stop what listens there, or set ORIGIN_PORT / PROXY_PORT" >&2
    exit 1
  fi
done

mkdir -p "$scratch"
scratch=$(cd "$scratch" && pwd)
pkg=$scratch/node_modules/http-cache-tests
installed=$(node -p "require('$pkg/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$version" ]; then
  step "npm install http-cache-tests@$version into $scratch"
  [ -f "$scratch/package.json" ] || echo '{ "private": true }' >"$scratch/package.json"
  (cd "$scratch" && npm install --no-audit --no-fund --loglevel=error "http-cache-tests@$version")
fi

step "cargo build --release --example reverse_proxy"
cargo build --release --example reverse_proxy

# From here on, whatever happens, both servers are stopped on the way out.
origin_pidfile=$scratch/origin.pid
origin_started=
proxy_pid=
stop() {
  if [ -n "$proxy_pid" ]; then
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
    proxy_pid=
  fi
  if [ -n "$origin_started" ]; then
    # The origin writes its pid file just after it starts: give it a moment.
    for _ in $(seq 30); do [ -s "$origin_pidfile" ] && break; sleep 0.1; done
    if [ -s "$origin_pidfile" ]; then
      kill "$(cat "$origin_pidfile")" 2>/dev/null || true
      for _ in $(seq 50); do listening "$origin_port" || break; sleep 0.1; done
    fi
    rm -f "$origin_pidfile"
    origin_started=
  fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting the origin on port $origin_port and the proxy on 127.0.0.1:$proxy_port"
rm -f "$origin_pidfile"
origin_started=1
# `npm run server` puts the origin in the background and writes its pid file.
(cd "$pkg" && npm run --silent server --port="$origin_port" --pidfile="$origin_pidfile") \
  >"$scratch/origin.log" 2>&1
# A minute of stale-if-error for responses that name none: what a production
# proxy is configured with (Varnish's grace, nginx's proxy_cache_use_stale).
"$proxy_bin" --listen "127.0.0.1:$proxy_port" --upstream "http://127.0.0.1:$origin_port" \
  --mode shared --backend memory:// --stale-if-error 60 >"$scratch/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do
  if [ -s "$origin_pidfile" ] && listening "$origin_port" && listening "$proxy_port"; then
    break
  fi
  if ! kill -0 "$proxy_pid" 2>/dev/null; then
    echo "the proxy exited:" >&2; cat "$scratch/proxy.log" >&2; exit 1
  fi
  sleep 0.1
done
if ! listening "$origin_port" || ! listening "$proxy_port"; then
  echo "the origin or the proxy is not accepting connections after 10 s:" >&2
  cat "$scratch/origin.log" "$scratch/proxy.log" >&2
  exit 1
fi

base=http://127.0.0.1:$proxy_port
if [ -n "$one_test" ]; then
  step "npm run cli --base=$base $one_test"
  (cd "$pkg" && npm run --silent cli --base="$base" "$one_test")
  exit 0
fi

step "npm run cli --base=$base (every test)"
raw=$scratch/results.raw.json
started=$SECONDS
(cd "$pkg" && npm run --silent cli --base="$base") >"$raw" 2>"$scratch/cli.log"
echo "suite ran in $((SECONDS - started)) s; raw results in $raw"
stop

step "score and gate (conformance/SUMMARY.md, conformance/results.json)"
node conformance/score.mjs "$pkg" "$raw"
