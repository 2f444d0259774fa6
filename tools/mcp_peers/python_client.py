"""Drives Concierge's MCP server with the official Python SDK (`mcp` on PyPI).

    python_client.py MODE stdio COMMAND [ARGS...]     # launches `concierge mcp ...`
    python_client.py MODE http URL TOKEN              # Streamable HTTP with a bearer token

MODE is the SDK's connection mode: `legacy` (initialize handshake) or `auto` (server/discover
first, falling back to initialize). Lists the tools, searches the knowledge base, opens a ticket
for a demo customer, lists and reads a knowledge-base resource and renders the answer prompt,
then prints one JSON object with what it saw; exits non-zero on any failure.
"""

import asyncio
import json
import os
import sys

from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def server_for(kind: str, rest: list[str]):
    if kind == "stdio":
        # The server reads its configuration from the environment (the SDK passes only a few
        # variables by default).
        return StdioServerParameters(command=rest[0], args=rest[1:], env=dict(os.environ))
    url, token = rest
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return streamable_http_client(url, http_client=http)


def structured(result) -> dict:
    if result.is_error:
        raise SystemExit(f"tool failed: {result.content}")
    return result.structured_content


async def main() -> None:
    mode, kind, *rest = sys.argv[1:]
    async with Client(server_for(kind, rest), mode=mode) as client:
        tools = await client.list_tools()
        names = sorted(t.name for t in tools.tools)
        found = structured(await client.call_tool("search_knowledge", {"query": "how do I reset my password", "limit": 3}))
        ticket = structured(
            await client.call_tool(
                "open_ticket",
                {
                    "customer": "cus_1005",
                    "subject": "Doorbell camera offline at night",
                    "description": "Opened through MCP by the Python SDK test.",
                },
            )
        )
        failed = await client.call_tool("get_order", {"customer": "cus_1005", "order_number": "A-9999"})
        resources = await client.list_resources()
        first = resources.resources[0]
        read = await client.read_resource(first.uri)
        prompt = await client.get_prompt("answer_support_question", {"question": "How do I reset my password?"})
        # 2026-07-28: the change-notification subscription is acknowledged with what it honours.
        listened = None
        if client.protocol_version >= "2026-07-28":
            async with client.listen(tools_list_changed=True) as sub:
                listened = bool(sub.honored.tools_list_changed)
        print(
            json.dumps(
                {
                    "protocol_version": client.protocol_version,
                    "server": client.server_info.name if client.server_info else None,
                    "tools": names,
                    "top_passage": found["passages"][0]["title"],
                    "ticket": ticket["number"],
                    "missing_order_is_error": bool(failed.is_error),
                    "resources": len(resources.resources),
                    "resource_text_starts": read.contents[0].text[:60],
                    "prompt_mentions_passage": "[1]" in prompt.messages[0].content.text,
                    "listen_honours_tools_list_changed": listened,
                }
            )
        )


asyncio.run(main())
