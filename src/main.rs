//! The `erlmcp-gen` binary: a thin shell over the library.

fn main() -> anyhow::Result<()> {
    Ok(())
}
