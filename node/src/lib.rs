//! erlmcp-node: the MCP server every cluster node runs.
