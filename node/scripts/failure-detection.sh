#!/usr/bin/env bash
# Measures failure detection with real processes: a coordinator and two workers on 127.0.0.1
# (ports 18180-18182 and 19180-19182) with default timing (1s heartbeat, 3s dead_after), then
# SIGKILLs w2 and reports how long until the coordinator's /cluster lists it dead.
# Usage: node/scripts/failure-detection.sh [path/to/erlmcp-node]   (needs curl)
# Every wait is bounded; all three nodes are stopped at the end.
set -u
BIN=${1:-target/debug/erlmcp-node}
# The nodes authenticate heartbeats with a cluster secret: a throwaway one in a 0600 file.
secret=$(mktemp)
head -c32 /dev/urandom | base64 > "$secret"
common=(--bind 127.0.0.1 --advertise-host 127.0.0.1 --log-level error --cluster-secret-file "$secret")
"$BIN" --node-name c --role coordinator --api-port 18180 --listener-port 19180 "${common[@]}" & C=$!
"$BIN" --node-name w1 --role worker --api-port 18181 --listener-port 19181 --seeds 127.0.0.1:18180 "${common[@]}" & W1=$!
"$BIN" --node-name w2 --role worker --api-port 18182 --listener-port 19182 --seeds 127.0.0.1:18180 "${common[@]}" & W2=$!
trap 'kill $C $W1 $W2 2>/dev/null; wait 2>/dev/null; rm -f "$secret"' EXIT
alive=0
for _ in $(seq 1 50); do
  alive=$(curl -s 127.0.0.1:18181/cluster | grep -o '"state":"alive"' | wc -l)
  [ "$alive" = 3 ] && break
  sleep 0.1
done
[ "$alive" = 3 ] || { echo "the three nodes did not see each other within 5 s"; exit 1; }
kill -9 $W2
t0=$(date +%s%N)
for _ in $(seq 1 200); do
  curl -s 127.0.0.1:18180/cluster | grep -q '"name":"w2","role":"worker","state":"dead"' && break
  sleep 0.05
done
t1=$(date +%s%N)
echo "w2 listed dead on the coordinator $(( (t1 - t0) / 1000000 )) ms after SIGKILL"
curl -s 127.0.0.1:18180/cluster; echo
