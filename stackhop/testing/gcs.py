"""Cloud Storage on loopback for tests: gcp-storage-emulator's JSON API server in a thread.

gcsfs and google-cloud-storage both honour `STORAGE_EMULATOR_HOST`, so the code under test
talks to it over real HTTP with the real clients, and a subprocess given `env()` does too.
What the emulator does not model, compared with Cloud Storage: IAM and signed URLs, object
versioning and retention, hierarchical namespaces, requester-pays, quotas; every request is
anonymous and served one at a time.
"""

from __future__ import annotations

import os
from functools import partial
from http.server import HTTPServer

from stackhop.testing.loopback import StandIn, ThreadedServer


class FakeGCS(StandIn):
    """`with FakeGCS(buckets=("b",)) as gcs:` then use gs://b/... with `gcs.env()` applied.

    While it runs, `env()` is also set in `os.environ` (and restored by `stop()`), because
    gcsfs and google-cloud-storage read it when a client is made, often deep in the code under test.
    """

    def __init__(self, buckets: tuple[str, ...] = ("stackhop",)):
        super().__init__()
        self.buckets = buckets
        self._server = ThreadedServer("FakeGCS", self._make_server, thread_name="fake-gcs")
        self._saved: dict[str, str | None] = {}

    def _make_server(self, address: tuple[str, int]) -> HTTPServer:
        # The emulator's own request handler and in-memory storage, on a socket bound to port 0
        # (its `create_server` must be told a port, which races other test processes for it).
        from gcp_storage_emulator.handlers import buckets
        from gcp_storage_emulator.server import RequestHandler
        from gcp_storage_emulator.storage import Storage

        storage = Storage(use_memory_fs=True)
        for name in self.buckets:
            buckets.create_bucket(name, storage)
        return HTTPServer(address, partial(RequestHandler, storage))

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def endpoint(self) -> str:
        return self._server.url

    def env(self) -> dict[str, str]:
        # gcsfs's hierarchical-namespace probe calls an API the emulator lacks.
        return {"STORAGE_EMULATOR_HOST": self.endpoint, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}

    def start(self) -> "FakeGCS":
        if self._server.running:
            return self
        self._server.start()
        for key, value in self.env().items():
            self._saved[key] = os.environ.get(key)
            os.environ[key] = value
        self._forget_clients()
        return self

    def stop(self) -> None:
        if not self._server.running:
            return
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved.clear()
        self._forget_clients()
        self._server.stop()

    @staticmethod
    def _forget_clients() -> None:
        """fsspec caches filesystems by arguments, not environment; drop gcsfs's so the next one sees ours."""
        try:
            import gcsfs

            gcsfs.GCSFileSystem.clear_instance_cache()
        except ImportError:
            pass
