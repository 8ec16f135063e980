#!/usr/bin/env bash
# The in-process hit against the bare service, measured interleaved in several
# processes: `bash benches/compare/interleaved.sh [PROCESSES]` (default 11; an
# even count takes the mean of the two middle medians).
#
# One process's interleaved median is steady within the process (quartiles a
# few hundredths apart) but moves from one process to the next with where its
# stack and heap happen to lie: on a 2 vCPU AMD EPYC VM the same binary gave
# 1.39x to 1.54x with address-space randomisation off and only the size of
# the environment changed (which moves the stack), and a second binary that
# differed by one doc comment gave 1.45x to 1.77x the same way. So every
# process here keeps the kernel's randomisation on (each draws its own
# layout), runs on one CPU (COMPARE_CPU, default 1), and the figure reported is
# the median of the processes' medians, with the lowest and the highest.
set -euo pipefail
cd "$(dirname "$0")"

processes=${1:-11}
cpu=${COMPARE_CPU:-1}
[[ "$processes" =~ ^[1-9][0-9]*$ ]] || {
  echo "interleaved.sh: PROCESSES must be a positive integer" >&2
  exit 1
}

lines=$(mktemp)
out=$(mktemp)
trap 'rm -f "$lines" "$out"' EXIT
if ! cargo bench --no-run >"$out" 2>&1; then
  cat "$out" >&2
  echo "interleaved.sh: the bench did not build" >&2
  exit 1
fi
bin=$(sed -n 's/.*Executable .*(\(.*\))$/\1/p' "$out" | tail -n 1)
[ -x "$bin" ] || {
  echo "interleaved.sh: no bench binary in cargo's output" >&2
  exit 1
}

for _ in $(seq "$processes"); do
  # The filter matches no criterion case: only the interleaved rounds run.
  if ! taskset -c "$cpu" "$bin" --bench interleaved >"$out" 2>&1; then
    cat "$out" >&2
    echo "interleaved.sh: the bench failed (COMPARE_CPU=$cpu)" >&2
    exit 1
  fi
  grep ', interleaved:' "$out" | tee -a "$lines" || {
    echo "interleaved.sh: the bench printed no interleaved line" >&2
    exit 1
  }
done

echo
echo "trc/hit over the bare service, median of $processes processes' medians (lowest-highest):"
for size in 1KiB 64KiB; do
  grep "^$size, interleaved" "$lines" |
    sed 's/.*trc\/hit = \([0-9.]*\)x.*/\1/' | sort -n |
    awk -v size="$size" '{ v[NR] = $1 } END {
      median = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%s: %.2fx (%.2f-%.2f)\n", size, median, v[1], v[NR] }'
done
