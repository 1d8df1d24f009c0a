"""A small MCP server for the end-to-end tests: a help desk with two tools, over stdio
(`mcp_server.py stdio`) or streamable HTTP (`mcp_server.py http PORT`), from the `mcp`
package on PyPI."""
import sys

from mcp.server.fastmcp import FastMCP

transport = sys.argv[1] if len(sys.argv) > 1 else "stdio"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
server = FastMCP("helpdesk", host="127.0.0.1", port=port or 8000, json_response=True, stateless_http=True)
TICKETS = ["printer jammed", "coffee machine leaks", "badge reader offline"]


@server.tool()
def count_open_tickets() -> str:
    """How many help-desk tickets are open, and their titles."""
    return f"{len(TICKETS)} open: " + "; ".join(TICKETS)


@server.tool()
def set_priority(title: str, priority: int) -> str:
    """Sets a ticket's priority (1-5)."""
    if title not in TICKETS:
        raise ValueError(f"no ticket titled {title!r}")
    return f"{title}: priority {priority}"


server.run(transport="streamable-http" if transport == "http" else "stdio")
