#!/usr/bin/env bash
# Measures what membership costs idle nodes: starts N real erlmcp-node processes on 127.0.0.1
# with membership on as the native runtime starts them (a cluster secret file, every node seeded
# by node1 the coordinator, advertise host 127.0.0.1), waits 20 s, reads each pid's
# utime+stime (/proc/<pid>/stat fields 14 and 15) twice 60 s apart, and prints CPU ms per
# second per node and the sum in cores. With `detect`, it then SIGKILLs three workers one after
# the other and reports how long node2's GET /cluster took to list each dead.
# Usage: node/scripts/membership-cluster-cost.sh path/to/erlmcp-node [N=63] [detect]
# Ports: API 40000+i, listener 40100+i (N <= 100). Needs curl. Every wait is bounded; exactly
# the pids it started are killed at the end.
set -u
BIN=${1:?usage: $0 path/to/erlmcp-node [N] [detect]}
N=${2:-63}
DETECT=${3:-}
API_BASE=40000
LISTENER_BASE=40100
if (( N < 3 || N > 100 )); then echo "N must be 3 to 100"; exit 2; fi
dir=$(mktemp -d)
secret=$dir/cluster-secret
head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$secret"
chmod 600 "$secret"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
for (( i = 0; i < N; i++ )); do
  name=node$((i + 1))
  role=worker
  (( i == 0 )) && role=coordinator
  env ERLMCP_CLUSTER=membership-cost ERLMCP_NODE_NAME=$name ERLMCP_ROLE=$role \
    ERLMCP_BIND=127.0.0.1 ERLMCP_API_PORT=$((API_BASE + i)) \
    ERLMCP_LISTENER_PORT=$((LISTENER_BASE + i)) ERLMCP_MAX_CONNECTIONS=16000 \
    ERLMCP_IDLE_TIMEOUT=30m ERLMCP_ADVERTISE_HOST=127.0.0.1 \
    ERLMCP_SEEDS=127.0.0.1:$API_BASE ERLMCP_CLUSTER_SECRET_FILE="$secret" \
    "$BIN" > "$dir/$name.log" 2>&1 &
  pids+=($!)
done
alive() { curl -s --max-time 2 "127.0.0.1:$1/cluster" | grep -o '"state":"alive"' | wc -l; }
sleep 20
for (( i = 0; i < N; i++ )); do
  [ -d /proc/${pids[$i]} ] || { echo "node$((i + 1)) exited; its log ends:"; tail -5 "$dir/node$((i + 1)).log"; exit 1; }
done
echo "after 20 s: node1 lists $(alive $API_BASE) alive, node2 $(alive $((API_BASE + 1))), node$N $(alive $((API_BASE + N - 1))) (of $N)"
# One line of utime+stime ticks, one figure per pid in start order (node1 first).
ticks() { for pid in "${pids[@]}"; do awk '{printf "%d ", $14 + $15}' /proc/$pid/stat; done; }
hz=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s%N)
sleep 60
t1=$(ticks); s1=$(date +%s%N)
printf '%s\n%s\n' "$t0" "$t1" | awk -v hz="$hz" -v n="$N" -v ns=$((s1 - s0)) '
  NR == 1 { for (i = 1; i <= NF; i++) before[i] = $i }
  NR == 2 { secs = ns / 1e9
    for (i = 1; i <= NF; i++) { ms = ($i - before[i]) * 1000 / hz / secs; sum += ms
      if (i == 1) seed = ms; else if (ms > most) most = ms }
    printf "N=%d over %.1f s: %.1f ms CPU per second per node (node1, the seed: %.1f; most of the others: %.1f), %.3f cores in all\n",
           n, secs, sum / n, seed, most, sum / 1000 }'
echo "after 80 s: node1 lists $(alive $API_BASE) alive, node2 $(alive $((API_BASE + 1))), node$N $(alive $((API_BASE + N - 1))) (of $N)"
[ "$DETECT" = detect ] || exit 0
for victim in $N $((N - 1)) $((N - 2)); do
  { kill -9 "${pids[$((victim - 1))]}"; wait "${pids[$((victim - 1))]}"; } 2>/dev/null
  pids[$((victim - 1))]=""  # reaped: never signal that pid again
  start=$(date +%s%N)
  seen=no
  for _ in $(seq 1 200); do
    if curl -s --max-time 1 "127.0.0.1:$((API_BASE + 1))/cluster" \
      | grep -q "\"name\":\"node$victim\",\"role\":\"worker\",\"state\":\"dead\""; then
      seen=yes; break
    fi
    sleep 0.05
  done
  end=$(date +%s%N)
  echo "node$victim SIGKILLed: node2 listed it dead=$seen after $(( (end - start) / 1000000 )) ms"
  sleep 2
done
