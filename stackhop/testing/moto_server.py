"""moto's server on loopback, as the AWS stand-ins (SageMaker, CodeBuild) share it.

moto's app is served here rather than through its `ThreadedMotoServer`, so a stand-in can put
its middleware around the app before the first request, without reaching into moto's private
attributes, and stop the server without waiting for moto's half-second poll.
"""

from __future__ import annotations

import contextlib
import os
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, Self

from stackhop.testing.loopback import StandIn, ThreadedServer

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class MotoStandIn(StandIn):
    """A stand-in built on moto's server: one endpoint for every AWS service, fake credentials.

    Subclasses patch moto for as long as they run (`_install`, returning the undo), which is
    also where they refuse a second instance: moto's backends are process-global. Starting and
    stopping each reset every backend, so no state leaks between tests.
    """

    #: The fake credentials every client made here signs with; moto accepts any.
    ACCESS_KEY_ID = "testing"
    SECRET_ACCESS_KEY = "testing"

    def __init__(self, region: str, *, thread_name: str) -> None:
        from moto.core.models import DEFAULT_ACCOUNT_ID

        super().__init__()
        self.region = region
        self.account_id = os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)
        self._server = ThreadedServer(type(self).__name__, self._make_server, thread_name=thread_name)
        self._uninstall: Callable[[], None] | None = None

    def _install(self) -> Callable[[], None]:
        return lambda: None

    def _wrap(self, app: WSGIApp) -> WSGIApp:
        return app

    def _make_server(self, address: tuple[str, int]) -> Any:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class QuietRequestHandler(MotoRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                pass

        app = self._wrap(DomainDispatcherApplication(create_backend_app))
        return make_server(address[0], address[1], app, threaded=True, request_handler=QuietRequestHandler)

    def start(self) -> Self:
        if self._server.running:
            raise RuntimeError(f"this {type(self).__name__} is already running")
        self._uninstall = self._install()
        try:
            self._server.start()
            self._reset()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Reset moto, stop the server and undo the patches; idempotent."""
        try:
            if self._server.running:
                with contextlib.suppress(OSError):
                    self._reset()
                self._server.stop()
        finally:
            if self._uninstall is not None:
                self._uninstall()
                self._uninstall = None

    def _reset(self) -> None:
        # moto's documented reset endpoint: empties every backend in this process.
        # No proxy: an HTTP(S)_PROXY in the environment must not capture a loopback call.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST")
        with opener.open(request, timeout=30) as response:
            response.read()

    @property
    def endpoint_url(self) -> str:
        """`http://127.0.0.1:PORT`, the one endpoint for every service."""
        return self._server.url

    def client(self, service: str) -> Any:
        """A boto3 client for `service` against this server, signed with the fake credentials.

        One attempt per call (`total_max_attempts=1`): an error reaches the test at once instead
        of after botocore's back-off. (`retries={"max_attempts": 1}` would still send two
        requests: that key counts retries, not attempts.) S3 uses path-style addressing, since
        bucket subdomains of 127.0.0.1 do not resolve.
        """
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=self.ACCESS_KEY_ID, aws_secret_access_key=self.SECRET_ACCESS_KEY, region_name=self.region
        )
        config = Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"})
        return session.client(service, endpoint_url=self.endpoint_url, config=config)

    def env(self) -> dict[str, str]:
        """Environment variables that point any AWS SDK (e.g. in a subprocess) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": self.SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.region,
        }
