#!/usr/bin/env bash
# The project's test command: installs the external validators the tests use
# (when it can), then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The distribution registry that tests/runtime_swarm_registry.rs pushes the swarm's images to.
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${need[*]} from Debian's packages"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "test.sh: WARNING: ${need[*]} missing and cannot be installed here; the tests that need them will say SKIPPED" >&2
  fi
fi

# The official MCP Python SDK drives erlmcp-node in node/tests/python_sdk.rs.
if ! python3 -c 'import mcp' >/dev/null 2>&1; then
  if python3 -m pip --version >/dev/null 2>&1; then
    echo "test.sh: installing the MCP Python SDK (pip install mcp)"
    python3 -m pip install -q mcp || echo "test.sh: WARNING: pip install mcp failed; the Python SDK tests will say SKIPPED" >&2
  fi
fi

# kubernetes-validate checks generated/k8s/ against the Kubernetes schemas it ships (offline).
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  if python3 -m pip --version >/dev/null 2>&1; then
    echo "test.sh: installing kubernetes-validate (pip)"
    # Debian's own python3 refuses pip installs outside a venv unless told otherwise.
    python3 -m pip install -q kubernetes-validate \
      || python3 -m pip install -q --break-system-packages kubernetes-validate \
      || echo "test.sh: WARNING: pip install kubernetes-validate failed; the Kubernetes schema tests will say SKIPPED" >&2
  else
    echo "test.sh: WARNING: no pip; the Kubernetes schema tests will say SKIPPED" >&2
  fi
fi

if ! docker info >/dev/null 2>&1; then
  echo "test.sh: WARNING: no Docker engine answers; the Docker tests will say SKIPPED" >&2
fi

cargo test --workspace "$@"
