#!/usr/bin/env bash
# Shared by the scripts in this folder: finds (or builds) the erlmcp-gen binary.
# shellcheck disable=SC2034  # variables are used by the scripts that source this file

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Where Cargo puts builds: CARGO_TARGET_DIR (relative to the workspace) or <workspace>/target,
# the same directory `cargo test` uses, so the quickstart and the tests share one cache.
erlmcp_target_dir() {
  local dir="${CARGO_TARGET_DIR:-target}"
  case "$dir" in
    /*) printf '%s\n' "$dir" ;;
    *) printf '%s\n' "$repo_root/$dir" ;;
  esac
}

# The one build. On Linux: the whole workspace, release, for this machine's own triple and
# statically linked (+crt-static), the same command `erlmcp-gen` runs when it needs a static
# erlmcp-node (src/engine/image.rs), so the one erlmcp-node serves the image (FROM scratch), the
# native runtime and the stress workers, and erlmcp-gen finds it beside itself: no second build.
# Elsewhere (macOS): a plain release build; the image then comes from the `source` build.
erlmcp_build_dir() {
  if [ "$(uname -s)" = Linux ]; then
    printf '%s\n' "$(erlmcp_target_dir)/$(uname -m)-unknown-linux-gnu/release"
  else
    printf '%s\n' "$(erlmcp_target_dir)/release"
  fi
}

# ERLMCP_GEN overrides; otherwise the one build above (a no-op when fresh).
erlmcp_gen_binary() {
  if [ -n "${ERLMCP_GEN:-}" ]; then
    printf '%s\n' "$ERLMCP_GEN"
    return 0
  fi
  if [ "$(uname -s)" = Linux ]; then
    (cd "$repo_root" && RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --release --quiet --workspace --target "$(uname -m)-unknown-linux-gnu") >&2
  else
    (cd "$repo_root" && cargo build --release --quiet --workspace) >&2
  fi
  printf '%s\n' "$(erlmcp_build_dir)/erlmcp-gen"
}
