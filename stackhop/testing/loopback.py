"""How every stand-in serves: real HTTP on 127.0.0.1, from a daemon thread of the test process.

Real sockets let the code under test use its real client libraries (and subprocesses reach the
same server), while the thread keeps the stand-in's state in the test's own process, where the
test can script and inspect it. The port is picked by the OS at bind time, so parallel test
processes never collide, and `stop()` frees it before returning, so a test can prove it did.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import socketserver
import threading
import traceback
from abc import ABC, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Self, TypeVar

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["HOST", "AsyncioServer", "LoopbackServer", "StandIn", "ThreadedServer", "free_port"]

HOST = "127.0.0.1"
_T = TypeVar("_T")


def free_port() -> int:
    """A port free on 127.0.0.1 right now, for a server that must be told its port in advance.

    Racy by nature (another process may take it before the server binds), so only for servers
    that cannot bind port 0 themselves, such as a subprocess; callers retry on a clash.
    """
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class StandIn(ABC):
    """What every stand-in does around its server: context-manager use, and its own bugs surfaced.

    A bug in a stand-in answers 500, which the code under test may retry or handle; raising the
    recorded tracebacks when a `with` block ends cleanly makes the test fail on it anyway.
    """

    _failure_heading = "{name} hit internal errors"

    def __init__(self) -> None:
        self._errors: list[str] = []

    @abstractmethod
    def start(self) -> Self:
        """Start serving (idempotent) and return self."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving (idempotent)."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if exc_type is None and self._errors:
            heading = self._failure_heading.format(name=type(self).__name__)
            raise RuntimeError(f"{heading}:\n" + "\n".join(self._errors))

    @property
    def errors(self) -> list[str]:
        """Tracebacks of the stand-in's own failures (the context manager raises on them)."""
        return list(self._errors)

    def _report(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        logging.getLogger(type(self).__module__).error("%s internal error: %s", type(self).__name__, text)
        self._errors.append(text)


class LoopbackServer(StandIn):
    """One server on 127.0.0.1 at a port the OS picks, with one start/stop/URL contract.

    Subclasses bind and serve in `_open` (returning the port, raising when it cannot serve) and
    undo that in `_close`; `start` and `stop` are idempotent so a fixture's teardown and a
    test's own `stop()` can both run.
    """

    def __init__(self, name: str, *, thread_name: str) -> None:
        super().__init__()
        self.name = name
        self.thread_name = thread_name
        self._port: int | None = None

    @property
    def running(self) -> bool:
        return self._port is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise self._not_running()
        return self._port

    @property
    def address(self) -> str:
        """"127.0.0.1:PORT", for clients that want a host rather than a URL."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """"http://127.0.0.1:PORT"."""
        return f"http://{self.address}"

    def start(self) -> Self:
        if self._port is None:
            try:
                self._port = self._open()
            except Exception as exc:
                detail = str(exc).rstrip(".") or type(exc).__name__
                raise RuntimeError(f"{self.name} failed to start on {HOST}: {detail}.") from exc
        return self

    def stop(self) -> None:
        if self._port is None:
            return
        try:
            self._close()
        finally:
            self._port = None

    def _not_running(self) -> RuntimeError:
        return RuntimeError(f"{self.name} is not running; use it as a context manager or call start().")

    @abstractmethod
    def _open(self) -> int:
        """Bind and serve on 127.0.0.1; return the port."""

    @abstractmethod
    def _close(self) -> None:
        """Stop serving and release the port."""


class ThreadedServer(LoopbackServer):
    """A `socketserver` server (http.server's, werkzeug's) bound to port 0 and served on a thread.

    Binding in the constructor also listens, so the server is ready when `start()` returns:
    connections made before the thread first polls wait in the backlog. The short poll interval
    is what makes `stop()` prompt (the stdlib default keeps it waiting up to half a second).
    """

    def __init__(
        self,
        name: str,
        make: Callable[[tuple[str, int]], socketserver.BaseServer],
        *,
        thread_name: str,
        poll_interval: float = 0.05,
    ) -> None:
        super().__init__(name, thread_name=thread_name)
        self._make = make
        self._poll_interval = poll_interval
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None

    def _open(self) -> int:
        server = self._make((HOST, 0))
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": self._poll_interval}, name=self.thread_name, daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        return int(server.server_address[1])  # type: ignore[index]

    def _close(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)


class AsyncioServer(LoopbackServer):
    """An aiohttp application on its own event loop in a daemon thread.

    The loop is the only thread that touches the stand-in's state, so requests and the test's
    own reads and scripted moves (`call`) never race. `build` runs on that loop before the port
    is bound (it may start background tasks); `before_stop` runs there before connections close.
    """

    def __init__(
        self,
        name: str,
        build: Callable[[], Awaitable["web.Application"]],
        *,
        thread_name: str,
        before_stop: Callable[[], Awaitable[None]] | None = None,
        shutdown_timeout: float = 1.0,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(name, thread_name=thread_name)
        self._build = build
        self._before_stop = before_stop
        self._shutdown_timeout = shutdown_timeout
        self._timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._bound: int | None = None
        self._startup_error: BaseException | None = None

    def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run `fn(*args)` on the server loop and return its result."""
        loop = self._loop
        if loop is None or not self.running:
            raise self._not_running()

        async def run() -> _T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=self._timeout)

    def _open(self) -> int:
        ready = threading.Event()
        self._startup_error = None
        thread = threading.Thread(target=self._serve, args=(ready,), name=self.thread_name, daemon=True)
        thread.start()
        ready.wait()
        if self._startup_error is not None:
            thread.join()
            self._loop = None
            raise self._startup_error
        assert self._bound is not None
        self._thread = thread
        return self._bound

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # reported to the starting thread
            self._startup_error = exc
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self) -> None:
        from aiohttp import web

        app = await self._build()
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        self._runner = runner
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((HOST, 0))
        await web.SockSite(runner, sock).start()
        self._bound = int(sock.getsockname()[1])

    async def _shutdown(self) -> None:
        if self._before_stop is not None:
            await self._before_stop()
        if self._runner is not None:
            await self._runner.cleanup()

    def _close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=self._timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=self._timeout)
            self._loop = self._thread = self._runner = None
            self._bound = None
