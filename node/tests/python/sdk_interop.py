"""Drives erlmcp-node with the official MCP Python SDK (`pip install mcp`), unchanged.

    python3 sdk_interop.py stdio PATH_TO_ERLMCP_NODE
    python3 sdk_interop.py http http://127.0.0.1:PORT/mcp
    python3 sdk_interop.py modern-http http://127.0.0.1:PORT/mcp
    python3 sdk_interop.py modern-stdio PATH_TO_ERLMCP_NODE

The first two use the handshake revisions (ClientSession.initialize); the `modern-` ones let the
SDK's high-level Client probe `server/discover` and speak the stateless 2026-07-28 revision.

Exits 0 when every check passes; prints what it checked.
"""

import sys

import anyio
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


async def exercise(read, write, transport):
    progress = []

    async def on_progress(done, total, message):
        progress.append(done)

    async with ClientSession(read, write) as session:
        init = await session.initialize()
        assert init.server_info.name == "erlmcp-node", init
        print(f"{transport}: initialized, protocol {init.protocol_version}")

        await session.send_ping()
        tools = await session.list_tools()
        names = [t.name for t in tools.tools]
        assert names == ["echo", "add", "sleep_ms", "cluster_status", "node_info"], names
        assert all(t.input_schema["type"] == "object" for t in tools.tools)

        echo = await session.call_tool("echo", {"text": "hello from python"})
        assert echo.content[0].text == "hello from python", echo
        add = await session.call_tool("add", {"a": 2, "b": 3})
        assert add.content[0].text == "5", add
        info = await session.call_tool("node_info", {})
        assert info.structured_content["name"], info
        await session.call_tool("cluster_status", {})
        slept = await session.call_tool("sleep_ms", {"ms": 250}, progress_callback=on_progress)
        assert not slept.is_error, slept
        assert progress, "sleep_ms sent no progress notification"

        resources = await session.list_resources()
        uris = sorted(str(r.uri) for r in resources.resources)
        assert uris == ["erlmcp://cluster/members", "erlmcp://node/info"], uris
        for uri in uris:
            read_result = await session.read_resource(uri)
            assert read_result.contents[0].text.startswith(("{", "[")), read_result

        prompts = await session.list_prompts()
        prompt = await session.get_prompt(prompts.prompts[0].name, {"focus": "latency"})
        assert "latency" in prompt.messages[0].content.text
        await session.set_logging_level("warning")

        try:
            await session.call_tool("no_such_tool", {})
            raise AssertionError("an unknown tool must fail")
        except AssertionError:
            raise
        except Exception as error:  # the SDK raises McpError (or returns is_error): both are fine
            print(f"{transport}: unknown tool refused: {error}")
        print(f"{transport}: all checks passed ({len(progress)} progress notifications)")


async def exercise_modern(server, transport):
    progress = []

    async def on_progress(done, total, message):
        progress.append(done)

    async with Client(server) as client:
        version = client.session.protocol_version
        assert version == "2026-07-28", version
        print(f"{transport}: negotiated {version} through server/discover")
        echo = await client.call_tool("echo", {"text": "stateless"})
        assert echo.content[0].text == "stateless", echo
        tools = await client.list_tools()
        assert len(tools.tools) == 5, tools
        read_result = await client.read_resource("erlmcp://cluster/members")
        assert read_result.contents[0].text.startswith("["), read_result
        prompts = await client.list_prompts()
        assert prompts.prompts, prompts
        slept = await client.call_tool("sleep_ms", {"ms": 250}, progress_callback=on_progress)
        assert not slept.is_error, slept
        print(f"{transport}: all checks passed ({len(progress)} progress notifications)")


async def main():
    transport, target = sys.argv[1], sys.argv[2]
    with anyio.fail_after(60):
        if transport == "stdio":
            params = StdioServerParameters(command=target, args=["stdio"], env={"ERLMCP_LOG": "error"})
            async with stdio_client(params) as (read, write):
                await exercise(read, write, transport)
        elif transport == "http":
            async with streamable_http_client(target) as streams:
                await exercise(streams[0], streams[1], transport)
        elif transport == "modern-http":
            await exercise_modern(target, transport)
        elif transport == "modern-stdio":
            params = StdioServerParameters(command=target, args=["stdio"], env={"ERLMCP_LOG": "error"})
            await exercise_modern(params, transport)
        else:
            raise SystemExit(f"unknown transport {transport}")


anyio.run(main)
