"""Drives erlmcp-node with the official MCP Python SDK, unchanged.

usage: sdk_client.py http URL | stdio PATH_TO_ERLMCP_NODE
Prints one line per check and exits non-zero on the first failure.
"""

import sys

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


async def exercise(session: ClientSession) -> None:
    init = await session.initialize()
    print("initialize:", init.server_info.name, init.protocol_version)
    assert init.server_info.name == "erlmcp-node"
    tools = await session.list_tools()
    names = sorted(t.name for t in tools.tools)
    print("tools:", names)
    assert names == ["add", "cluster_status", "echo", "node_info", "sleep_ms"], names
    echoed = await session.call_tool("echo", {"text": "hello from python"})
    print("echo:", echoed.content[0].text)
    assert echoed.content[0].text == "hello from python"
    added = await session.call_tool("add", {"a": 40, "b": 2})
    assert added.content[0].text == "42", added
    progress = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    slept = await session.call_tool("sleep_ms", {"ms": 300}, progress_callback=on_progress)
    print("sleep_ms:", slept.content[0].text, "progress notifications:", len(progress))
    assert slept.content[0].text == "slept 300 ms"
    resources = await session.list_resources()
    uris = sorted(str(r.uri) for r in resources.resources)
    print("resources:", uris)
    info = await session.read_resource("erlmcp://node/info")
    assert "erlmcp" in info.contents[0].text or "node" in info.contents[0].text
    prompts = await session.list_prompts()
    assert prompts.prompts[0].name == "cluster_health_report"
    await session.send_ping()
    print("ok")


async def main() -> None:
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "http":
        async with streamable_http_client(target) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await exercise(session)
    else:
        params = StdioServerParameters(command=target, args=["stdio", "--node-name", "stdio-node"])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await exercise(session)


anyio.run(main)
