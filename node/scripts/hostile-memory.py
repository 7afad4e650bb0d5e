#!/usr/bin/env python3
"""The issue-10 hostile clients against a real erlmcp-node on 127.0.0.1, with the node's RSS.

Usage: [FILES=400] node/scripts/hostile-memory.py [path/to/erlmcp-node]   (default target/release/erlmcp-node)

Starts the node on ephemeral loopback ports with 1,000 open files, then, one after another:
  1. 200 TCP connections each send 1 MiB - 1 bytes of a line without a newline;
  2. one TCP session sends 3,000 `sleep_ms` calls (5 s, with progress tokens) and never reads
     (for at most 10 s);
  3. 420 HTTP connections are opened and left idle, then `/health` is asked for (retrying
     every 0.5 s for at most 5 s).
It prints the node's VmRSS before and after each, and what the clients saw. Every loop is
bounded in count and time; every socket has a timeout; the node is stopped at the end.
"""

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/erlmcp-node"
FILES = int(os.environ.get("FILES", "1000"))  # the open-file limit the node runs with


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start():
    def limit_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (FILES, FILES))

    node = subprocess.Popen(
        [BIN, "serve", "--bind", "127.0.0.1", "--api-port", "0", "--listener-port", "0",
         "--node-name", "hostile", "--log-level", "info"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=limit_files, text=True)
    for _ in range(100):
        log = json.loads(node.stderr.readline())
        fields = log.get("fields", {})
        if fields.get("message") == "serving":
            # Keep reading its logs so a full pipe never blocks the node.
            threading.Thread(target=lambda: [None for _ in node.stderr], daemon=True).start()
            return node, int(fields["api"]), int(fields["listener"]), fields
    raise SystemExit("the node did not start")


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(5)
    return sock


def long_lines(port):
    sockets, refused = [], 0
    chunk = b"x" * (64 * 1024)
    for _ in range(200):
        try:
            sock = connect(port)
            sockets.append(sock)
            for _ in range(16):
                sock.sendall(chunk if _ < 15 else chunk[:-1])
        except OSError:
            refused += 1
    return sockets, refused


def never_reading_flood(port):
    sock = connect(port)
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "h", "version": "0"}}}
    sock.sendall((json.dumps(init) + "\n").encode())
    sock.recv(65536)
    sock.sendall(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    deadline = time.time() + 10
    sent = 0
    try:
        for i in range(1, 3001):
            if time.time() > deadline:
                break
            call = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
                "name": "sleep_ms", "arguments": {"ms": 5000}, "_meta": {"progressToken": i}}}
            sock.sendall((json.dumps(call) + "\n").encode())
            sent += 1
    except OSError as error:
        return sock, sent, f"send failed after {sent}: {error}"
    return sock, sent, "all sent"


def health(port):
    try:
        sock = connect(port)
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        return sock.recv(200).split(b"\r\n")[0].decode()
    except OSError as error:
        return f"failed: {error}"


def closed_by_budget(port):
    """The node's count of connections it closed at the input budget (None before it had one)."""
    try:
        sock = connect(port)
        sock.sendall(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        text = b""
        while chunk := sock.recv(65536):
            text += chunk
    except OSError:
        return None
    for line in text.decode(errors="replace").splitlines():
        if line.startswith('erlmcp_connections_closed_total{reason="input_budget"}'):
            return int(float(line.split()[-1]))
    return None


def main():
    node, api, tcp, serving = start()
    try:
        print(f"node serving with max_connections {serving['max_connections']} with {FILES} open files")
        time.sleep(0.5)
        before = rss_kib(node.pid)
        print(f"RSS at start: {before} KiB")

        sockets, refused = long_lines(tcp)
        time.sleep(0.5)
        print(f"1. 200 connections x (1 MiB - 1) without a newline: {closed_by_budget(api)} closed "
              f"at the input budget ({refused} saw an error while sending); "
              f"RSS {rss_kib(node.pid)} KiB (+{(rss_kib(node.pid) - before) / 1024:.1f} MiB)")
        for sock in sockets:
            sock.close()
        time.sleep(1)
        base = rss_kib(node.pid)

        sock, sent, outcome = never_reading_flood(tcp)
        peak = base
        for _ in range(20):
            peak = max(peak, rss_kib(node.pid))
            time.sleep(0.5)
        print(f"2. 3,000 sleep_ms with progress, never read: {sent} sent ({outcome}); "
              f"RSS before {base} KiB, peak {peak} KiB (+{(peak - base) / 1024:.1f} MiB)")
        sock.close()
        time.sleep(1)

        idle = []
        for _ in range(420):
            try:
                idle.append(connect(api))
            except OSError:
                break
        time.sleep(0.5)
        started = time.time()
        answer = health(api)
        while not answer.endswith("200 OK") and time.time() - started < 5:
            time.sleep(0.5)
            answer = health(api)
        print(f"3. {len(idle)} idle HTTP connections opened; /health: {answer} after "
              f"{time.time() - started:.1f} s; RSS {rss_kib(node.pid)} KiB")
        for sock in idle:
            sock.close()
    finally:
        node.terminate()
        try:
            node.wait(timeout=15)
        except subprocess.TimeoutExpired:
            node.kill()


if __name__ == "__main__":
    main()
