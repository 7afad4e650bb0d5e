#!/usr/bin/env python3
"""The node's CPU per Streamable HTTP request on keep-alive connections, for comparing binaries.

Usage: node/scripts/http-cpu-per-request.py [path/to/erlmcp-node] [REQUESTS]
       (defaults target/release/erlmcp-node, 20000)

Starts the node on ephemeral loopback ports, sends REQUESTS stateless (2026-07-28)
`tools/call echo` POSTs one at a time round-robin over 4 keep-alive HTTP/1.1 connections, and
prints the node's user + system CPU time (from /proc/<pid>/stat) per request. One request at a
time means every connection goes idle between its requests, so each request pays whatever the
node does between requests. The loop is bounded by REQUESTS and each socket has a timeout; the
node is stopped at the end.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/erlmcp-node"
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    port = free_port()
    node = subprocess.Popen(
        [binary, "serve", "--bind", "127.0.0.1", "--api-port", str(port), "--listener-port",
         str(free_port()), "--log-level", "warn", "--node-name", "bench"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "echo", "arguments": {"text": "hello"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}})
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "MCP-Protocol-Version": "2026-07-28", "Host": f"127.0.0.1:{port}"}
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(4)]
        before = cpu_ticks(node.pid)
        for i in range(requests):
            connection = connections[i % 4]
            connection.request("POST", "/mcp", body, headers)
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                sys.exit(f"request {i} answered {answer.status}")
        spent = cpu_ticks(node.pid) - before
        per = spent / os.sysconf("SC_CLK_TCK") / requests * 1e6
        print(f"{binary}: {requests} requests, node CPU {per:.1f} µs per request")
    finally:
        node.terminate()
        node.wait(timeout=15)


if __name__ == "__main__":
    main()
