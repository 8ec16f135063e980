#!/usr/bin/env bash
# Over-the-wire load comparison: CacheLayer and the crate's reverse proxy
# against bare axum, Varnish and nginx proxy_cache, measured with wrk.
#
# Run (as root, so that missing tools can be installed with apt-get):
#
#     sudo bash benches/load.sh
#
# As another user it works too when wrk, varnishd, nginx, redis-server and curl
# are already installed. It takes about 5 minutes a round (three rounds by
# default), plus the first release build of the two examples (2-3 minutes on 2
# cores; CARGO_BUILD_JOBS=1 to be gentle).
#
# What it does:
#   - builds examples/load_server.rs (with the redis feature) and
#     examples/reverse_proxy.rs in release mode;
#   - in each round, starts, one target at a time, each server on CPU 0
#     (taskset -c 0) and runs wrk on CPU 1 (taskset -c 1) against /1k and /64k
#     (1 KiB and 64 KiB bodies, Cache-Control: public, max-age=3600), at c=1
#     (-t1 -c1) and c=50 (-t2 -c50), 10 s each with --latency, after a checked
#     warm-up request and a 2 s wrk warm-up at c=50. Targets:
#       bare axum           load_server --cache none (the baseline)
#       CacheLayer memory   load_server --cache memory (every request a hit)
#       CacheLayer Redis    load_server --cache redis, Redis on a free port (hits)
#       Varnish             varnishd, default VCL, -s malloc,256m, before bare axum
#       nginx proxy_cache   generated config, before bare axum
#       reverse_proxy       examples/reverse_proxy --mode shared --backend memory://
#                           before bare axum
#   - checks before measuring that every cached target answers from its cache
#     (Cache-Status: ...; hit, X-Varnish with two ids, X-Cache-Status: HIT) with
#     the full body;
#   - prints a Markdown table (the median over the rounds of requests/s, p50
#     and p99, and of each round's ratio of requests/s to bare axum at the same
#     size and concurrency, with the lowest and highest ratio) and writes it,
#     with the machine and tool versions, to target/load/results.md; wrk's own
#     output goes to target/load/raw/. Bare axum is measured in every round, a
#     few minutes from each target, so a host whose speed drifts (a shared VM)
#     moves both sides of a ratio together.
#
# Every process it starts is stopped when it exits, also on failure or Ctrl-C.
#
# Knobs (environment): LOAD_DURATION (wrk -d of a measurement, default 10s),
# LOAD_WARMUP (default 2s), LOAD_ROUNDS (default 3), LOAD_SERVER_CPU (default
# 0), LOAD_CLIENT_CPU (default 1), LOAD_OUT (default target/load).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${LOAD_DURATION:-10s}
warmup=${LOAD_WARMUP:-2s}
rounds=${LOAD_ROUNDS:-3}
server_cpu=${LOAD_SERVER_CPU:-0}
client_cpu=${LOAD_CLIENT_CPU:-1}
out=${LOAD_OUT:-target/load}
target_dir=${CARGO_TARGET_DIR:-target}

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'load.sh: %s\n' "$*" >&2
  exit 1
}
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "LOAD_ROUNDS must be a positive integer, not '$rounds'"
loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- tools -------------------------------------------------------------------

missing=()
for pair in wrk:wrk varnishd:varnish nginx:nginx redis-server:redis-server curl:curl taskset:util-linux; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    die "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root"
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || die "cargo is not installed"

# --- processes, stopped on exit ------------------------------------------------

work=$(mktemp -d /tmp/load-bench.XXXXXX)
# varnishd and nginx drop privileges when started as root: their users must be
# able to reach the directories they are given below this one.
chmod 755 "$work"
pids=()

stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    stop_pid "${pids[i]}"
  done
  pids=()
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME COMMAND...: runs COMMAND on the server CPU, output in $work/NAME.log;
# its pid is left in $started.
start() {
  local name=$1
  shift
  taskset -c "$server_cpu" "$@" >"$work/$name.log" 2>&1 &
  started=$!
  pids+=("$started")
}

# stop PID: stops one process started with start, and forgets it.
stop() {
  local pid=$1 kept=() p
  stop_pid "$pid"
  for p in "${pids[@]}"; do
    [ "$p" = "$pid" ] || kept+=("$p")
  done
  pids=("${kept[@]}")
}

used_ports=" "
# Ports are picked below the kernel's ephemeral range: wrk's and the proxies'
# outgoing connections (and their TIME_WAIT remains) take ports from that range,
# and a listener cannot bind one of those.
read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range || ephemeral_low=32768
[ "$ephemeral_low" -gt 12000 ] || die "ephemeral port range starts at $ephemeral_low: no room below it"
# A loopback port nobody listens on (and that this script has not handed out).
free_port() {
  local port
  while :; do
    port=$((10000 + RANDOM % (ephemeral_low - 10000)))
    case $used_ports in *" $port "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      used_ports+="$port "
      echo "$port"
      return
    fi
  done
}

# wait_up NAME PID PORT: waits (up to 30 s) for PORT to accept connections.
wait_up() {
  local name=$1 pid=$2 port=$3 i
  for i in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || {
      cat "$work/$name.log" >&2
      die "$name exited before listening on $port"
    }
    sleep 0.1
  done
  cat "$work/$name.log" >&2
  die "$name is not listening on $port after 30 s"
}

# --- build ---------------------------------------------------------------------

log "building the examples (release)"
cargo build --release --features redis --example load_server --example reverse_proxy
load_server=$target_dir/release/examples/load_server
reverse_proxy=$target_dir/release/examples/reverse_proxy

# --- measuring -----------------------------------------------------------------

mkdir -p "$out/raw"
declare -A rps p50 p99 errors
targets=()
sizes=(1k 64k)
declare -A body_len=([1k]=1024 [64k]=65536)

# to_us VALUE: wrk's latency (12.34us, 1.20ms, 1.00s, 1.00m) in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) f = 1; else if (v ~ /ms$/) f = 1e3; else if (v ~ /m$/) f = 6e7; else f = 1e6
    printf "%.3f", n * f
  }'
}

# check_hit LABEL URL PATTERN: one warm-up request, then one that must answer
# 200 with the whole body and a header matching PATTERN (case-insensitive);
# PATTERN empty: no cache to check.
check_hit() {
  local label=$1 url=$2 pattern=$3 size=$4 headers got
  curl -fsS -o /dev/null "$url" || die "$label: warm-up request to $url failed"
  headers=$(curl -fsS -D - -o "$work/body" "$url") || die "$label: request to $url failed"
  got=$(wc -c <"$work/body")
  [ "$got" -eq "${body_len[$size]}" ] || die "$label: $url answered $got bytes, expected ${body_len[$size]}"
  if [ -n "$pattern" ]; then
    grep -qiE "$pattern" <<<"$headers" || {
      printf '%s\n' "$headers" >&2
      die "$label: $url is not served from the cache (no header matching /$pattern/)"
    }
    log "$label $size: hit confirmed ($(grep -iE "$pattern" <<<"$headers" | tr -d '\r'))"
  fi
}

# measure LABEL BASE_URL HIT_PATTERN: warm-up and the four wrk runs of one
# target in round $round.
measure() {
  local label=$1 base=$2 pattern=$3 size conc threads file slug key
  [ "$round" != 1 ] || targets+=("$label")
  slug=$(tr -c 'a-zA-Z0-9\n' '_' <<<"$label")
  for size in "${sizes[@]}"; do
    check_hit "$label" "$base/$size" "$pattern" "$size"
    taskset -c "$client_cpu" wrk -t2 -c50 -d"$warmup" "$base/$size" >/dev/null
    for conc in 1 50; do
      threads=$([ "$conc" = 1 ] && echo 1 || echo 2)
      file=$out/raw/${slug}_${size}_c${conc}_round$round.txt
      key="$label|$size|$conc|$round"
      log "round $round/$rounds, $label $size c=$conc: wrk -t$threads -c$conc -d$duration --latency"
      taskset -c "$client_cpu" wrk -t"$threads" -c"$conc" -d"$duration" --latency "$base/$size" >"$file"
      rps[$key]=$(awk '/^Requests\/sec:/ { print $2 }' "$file")
      p50[$key]=$(to_us "$(awk '$1 == "50%" { print $2 }' "$file")")
      p99[$key]=$(to_us "$(awk '$1 == "99%" { print $2 }' "$file")")
      errors[$key]=$(grep -E '^ *(Socket errors|Non-2xx)' "$file" | tr -s ' ' | tr '\n' ';' || true)
      [ -n "${rps[$key]}" ] || die "no Requests/sec in $file"
    done
  done
}

# The origin: bare axum. The baseline, and the upstream of the three proxies.
origin_port=$(free_port)
start origin "$load_server" --listen "127.0.0.1:$origin_port" --cache none
origin_pid=$started
wait_up origin "$origin_pid" "$origin_port"

# nginx's configuration, written once: its port and cache directory serve every round.
nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy_temp;
    fastcgi_temp_path $work/nginx/fastcgi_temp;
    uwsgi_temp_path $work/nginx/uwsgi_temp;
    scgi_temp_path $work/nginx/scgi_temp;
    # Cache-Control from the upstream is honoured (no proxy_ignore_headers):
    # proxy_cache_valid only applies to responses that carry no lifetime.
    proxy_cache_path $work/nginx/cache levels=1:2 keys_zone=load:10m max_size=256m
                     inactive=60m use_temp_path=off;
    upstream origin {
        server 127.0.0.1:$origin_port;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache load;
            proxy_cache_valid 200 10m;
            add_header X-Cache-Status \$upstream_cache_status;
        }
    }
}
EOF

for round in $(seq "$rounds"); do
  measure "bare axum" "http://127.0.0.1:$origin_port" ""

  port=$(free_port)
  start layer-memory "$load_server" --listen "127.0.0.1:$port" --cache memory
  wait_up layer-memory "$started" "$port"
  measure "axum + CacheLayer memory" "http://127.0.0.1:$port" '^cache-status:.*; hit'
  stop "$started"

  redis_port=$(free_port)
  start redis redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --daemonize no --dir "$work"
  redis_pid=$started
  wait_up redis "$redis_pid" "$redis_port"
  port=$(free_port)
  start layer-redis "$load_server" --listen "127.0.0.1:$port" --cache redis \
    --redis-url "redis://127.0.0.1:$redis_port"
  wait_up layer-redis "$started" "$port"
  measure "axum + CacheLayer Redis" "http://127.0.0.1:$port" '^cache-status:.*; hit'
  stop "$started"
  stop "$redis_pid"

  port=$(free_port)
  start varnish varnishd -F -a "127.0.0.1:$port" -b "127.0.0.1:$origin_port" \
    -s malloc,256m -n "$work/varnish"
  wait_up varnish "$started" "$port"
  # X-Varnish carries two transaction ids on a hit (this one and the storing one).
  measure "Varnish" "http://127.0.0.1:$port" '^x-varnish: [0-9]+ [0-9]+'
  stop "$started"

  start nginx nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log"
  wait_up nginx "$started" "$nginx_port"
  measure "nginx proxy_cache" "http://127.0.0.1:$nginx_port" '^x-cache-status: HIT'
  stop "$started"

  port=$(free_port)
  start reverse-proxy "$reverse_proxy" --listen "127.0.0.1:$port" \
    --upstream "http://127.0.0.1:$origin_port" --mode shared --backend memory://
  wait_up reverse-proxy "$started" "$port"
  measure "reverse_proxy (crate)" "http://127.0.0.1:$port" '^cache-status:.*; hit'
  stop "$started"
done

stop "$origin_pid"

# --- the table -----------------------------------------------------------------

fmt_latency() {
  awk -v us="$1" 'BEGIN { if (us < 1000) printf "%.0f µs", us; else printf "%.2f ms", us / 1000 }'
}

# median NUMBER...: the middle value (the mean of the two middle ones for an
# even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
  }'
}

# per_round ARRAY CELL: the array's value for CELL ("label|size|c") in every round.
per_round() {
  local -n values=$1
  local r
  for r in $(seq "$rounds"); do
    echo "${values[$2|$r]}"
  done
}

# ratios LABEL BASE SIZE C: each round's requests/s of LABEL over BASE's, at
# SIZE and C, lowest first.
ratios() {
  local r
  for r in $(seq "$rounds"); do
    awk -v a="${rps[$1|$3|$4|$r]}" -v b="${rps[$2|$3|$4|$r]}" 'BEGIN { printf "%.4f\n", a / b }'
  done | sort -g
}

# ratio_cells LABEL BASE SIZE C: the median of those ratios, and their range.
ratio_cells() {
  local each
  mapfile -t each < <(ratios "$@")
  printf '%.2f | %.2f–%.2f' "$(median "${each[@]}")" "${each[0]}" "${each[-1]}"
}

{
  echo "| target | size | c | requests/s | p50 | p99 | vs bare axum | lowest–highest |"
  echo "|---|---|---:|---:|---:|---:|---:|---|"
  for size in "${sizes[@]}"; do
    for conc in 1 50; do
      for label in "${targets[@]}"; do
        cell="$label|$size|$conc"
        printf '| %s | %s | %s | %.0f | %s | %s | %s |\n' "$label" "${size/k/ KiB}" "$conc" \
          "$(median $(per_round rps "$cell"))" \
          "$(fmt_latency "$(median $(per_round p50 "$cell"))")" \
          "$(fmt_latency "$(median $(per_round p99 "$cell"))")" \
          "$(ratio_cells "$label" "bare axum" "$size" "$conc")"
      done
    done
  done
  echo
  echo "The crate's reverse proxy against Varnish, round by round:"
  echo
  echo "| size | c | reverse_proxy / Varnish | lowest–highest |"
  echo "|---|---:|---:|---|"
  for size in "${sizes[@]}"; do
    for conc in 1 50; do
      printf '| %s | %s | %s |\n' "${size/k/ KiB}" "$conc" \
        "$(ratio_cells "reverse_proxy (crate)" "Varnish" "$size" "$conc")"
    done
  done
  echo
  problems=0
  for key in "${!errors[@]}"; do
    if [ -n "${errors[$key]}" ]; then
      echo "wrk reported for $key: ${errors[$key]}"
      problems=1
    fi
  done
  [ "$problems" = 1 ] || echo "wrk reported no socket errors and no non-2xx responses."
} >"$work/table.md"

{
  echo "# Over-the-wire load comparison"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
    "load average before the run: $loadavg_before"
  echo "- servers on CPU $server_cpu, wrk on CPU $client_cpu; wrk -d$duration --latency," \
    "c=1: -t1 -c1, c=50: -t2 -c50; $rounds round(s), every figure the median over them"
  echo "- $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), $(varnishd -V 2>&1 | head -n1 | cut -d' ' -f2 | tr -d '(')," \
    "$(nginx -v 2>&1 | cut -d' ' -f3), $(redis-server --version | cut -d' ' -f1-3), $(rustc --version | cut -d' ' -f1-2)"
  echo
  cat "$work/table.md"
} >"$out/results.md"

echo
cat "$out/results.md"
echo
log "written to $out/results.md (wrk output in $out/raw/)"
