#!/usr/bin/env bash
# Shared by the scripts in this folder: finds (or builds) the erlmcp-gen binary.
# shellcheck disable=SC2034  # variables are used by the scripts that source this file

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# ERLMCP_GEN overrides; otherwise build the workspace in release mode (a no-op when fresh).
erlmcp_gen_binary() {
  if [ -n "${ERLMCP_GEN:-}" ]; then
    printf '%s\n' "$ERLMCP_GEN"
    return 0
  fi
  (cd "$repo_root" && cargo build --release --quiet --workspace) >&2
  printf '%s\n' "$repo_root/target/release/erlmcp-gen"
}
