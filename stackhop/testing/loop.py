"""The event-loop thread and loopback socket every aiohttp-based stand-in runs on."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, Awaitable, Callable


def serve_forever(startup: Callable[[], Awaitable[None]], ready: threading.Event, *,
                  on_loop: Callable[[asyncio.AbstractEventLoop], None],
                  on_error: Callable[[BaseException], None]) -> None:
    """Run in the server thread: start up, signal `ready` (after `on_error` when start-up failed), then serve."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    on_loop(loop)
    try:
        loop.run_until_complete(startup())
    except BaseException as exc:  # reported to the starting thread
        on_error(exc)
        ready.set()
        loop.close()
        return
    ready.set()
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def start_loopback_site(app: Any) -> tuple[Any, str]:
    """Serve an aiohttp app on 127.0.0.1 at a free port; returns (runner, "http://127.0.0.1:PORT")."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}"
