#!/usr/bin/env bash
# Coordinator loss with real processes on 127.0.0.1 (ports 18180-18183, 19180-19183), default
# timing: SIGKILL the coordinator, show the workers' views and placement, start a worker whose
# only seed is the dead coordinator, restart the coordinator, show the views again.
# Usage: node/scripts/coordinator-loss.sh [path/to/erlmcp-node]   (needs curl and python3)
set -u
BIN=${1:-target/debug/erlmcp-node}
# The nodes authenticate heartbeats with a cluster secret: a throwaway one in a 0600 file.
secret=$(mktemp)
head -c32 /dev/urandom | base64 > "$secret"
common=(--bind 127.0.0.1 --advertise-host 127.0.0.1 --log-level error --cluster-secret-file "$secret")
coordinator() { "$BIN" --node-name c --role coordinator --api-port 18180 --listener-port 19180 "${common[@]}" & C=$!; }
worker() { "$BIN" --node-name "w$1" --role worker --api-port "1818$1" --listener-port "1918$1" --seeds 127.0.0.1:18180 "${common[@]}" & eval "W$1=\$!"; }
view() { curl -s "127.0.0.1:$1/cluster" | python3 -c 'import json,sys; print([(m["name"], m["state"]) for m in json.load(sys.stdin)["members"]])'; }
coordinator; worker 1; worker 2
trap 'kill $C $W1 $W2 ${W3:-} 2>/dev/null; wait 2>/dev/null; rm -f "$secret"' EXIT
sleep 2
kill -9 $C
sleep 5
echo "w1 after the coordinator died: $(view 18181)"
echo "placement on w2: $(curl -s 127.0.0.1:18182/cluster/placement)"
worker 3
sleep 3
echo "w3, whose only seed is dead: $(view 18183)"
coordinator
sleep 4
echo "w3 after the coordinator returned: $(view 18183)"
echo "w1 after the coordinator returned: $(view 18181)"
