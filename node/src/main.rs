//! The `erlmcp-node` binary.

fn main() {}
