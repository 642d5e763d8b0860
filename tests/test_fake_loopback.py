"""The lifecycle every stand-in shares (stackhop.testing.loopback): one contract, proven once."""

from __future__ import annotations

import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiohttp import web

from stackhop.testing.loopback import AsyncioServer, StandIn, ThreadedServer


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        pass


async def _hello_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    return app


def _servers() -> list[ThreadedServer | AsyncioServer]:
    return [
        ThreadedServer("FakeThing", lambda address: ThreadingHTTPServer(address, _Hello), thread_name="fake-thing"),
        AsyncioServer("FakeThing", _hello_app, thread_name="fake-thing"),
    ]


@pytest.mark.parametrize("server", _servers(), ids=["threaded", "asyncio"])
def test_serves_on_loopback_and_stops_idempotently_freeing_the_port(server: ThreadedServer | AsyncioServer) -> None:
    with server:
        assert server.start() is server  # a second start is a no-op
        assert server.url == f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(server.url, timeout=5) as answer:
            assert answer.read() == b"hello"
        port = server.port
    server.stop()
    assert not server.running
    assert not [t for t in threading.enumerate() if t.name == "fake-thing"]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(RuntimeError, match=r"^FakeThing is not running; use it as a context manager or call start\(\)\.$"):
        server.url


@pytest.mark.parametrize("kind", ["threaded", "asyncio"])
def test_a_server_that_cannot_start_says_so_in_one_sentence(kind: str) -> None:
    def refuse(*_: object) -> ThreadingHTTPServer:
        raise OSError("no sockets today")

    async def refuse_async() -> web.Application:
        raise OSError("no sockets today")

    server = (ThreadedServer("FakeThing", refuse, thread_name="fake-thing") if kind == "threaded"
              else AsyncioServer("FakeThing", refuse_async, thread_name="fake-thing"))
    with pytest.raises(RuntimeError, match=r"^FakeThing failed to start on 127\.0\.0\.1: no sockets today\.$"):
        server.start()
    assert not server.running
    server.stop()


def test_a_stand_in_raises_its_own_failures_when_the_block_ends_cleanly() -> None:
    class FakeThing(StandIn):
        def start(self) -> "FakeThing":
            return self

        def stop(self) -> None:
            pass

    with pytest.raises(RuntimeError, match="FakeThing hit internal errors:\n.*ValueError: bug"):
        with FakeThing() as fake:
            fake._report(ValueError("bug"))
    with pytest.raises(KeyError):  # the test's own failure wins
        with FakeThing() as fake:
            fake._report(ValueError("bug"))
            raise KeyError("test")


def test_call_runs_on_the_server_loop() -> None:
    with AsyncioServer("FakeThing", _hello_app, thread_name="fake-thing") as server:
        assert server.call(lambda: threading.current_thread().name) == "fake-thing"
    with pytest.raises(RuntimeError, match="not running"):
        server.call(lambda: None)
