"""Cloud Storage on loopback for tests: gcp-storage-emulator's JSON API server in a thread.

gcsfs and google-cloud-storage both honour `STORAGE_EMULATOR_HOST`, so the code under test
talks to it over real HTTP with the real clients, and a subprocess given `env()` does too.
What the emulator does not model, compared with Cloud Storage: IAM and signed URLs, object
versioning and retention, hierarchical namespaces, requester-pays, quotas; every request is
anonymous and served one at a time.
"""

from __future__ import annotations

import os
import socket
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeGCS:
    """`with FakeGCS(buckets=("b",)) as gcs:` then use gs://b/... with `gcs.env()` applied."""

    def __init__(self, buckets: tuple[str, ...] = ("stackhop",)):
        self.buckets = buckets
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._saved: dict[str, str | None] = {}

    def env(self) -> dict[str, str]:
        # gcsfs's hierarchical-namespace probe calls an API the emulator lacks.
        return {"STORAGE_EMULATOR_HOST": self.endpoint, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}

    def __enter__(self) -> "FakeGCS":
        from gcp_storage_emulator.handlers import buckets
        from gcp_storage_emulator.server import create_server

        self._server = create_server("127.0.0.1", self.port, in_memory=True)
        self._server.start()
        for name in self.buckets:
            buckets.create_bucket(name, self._server._storage)
        for key, value in self.env().items():
            self._saved[key] = os.environ.get(key)
            os.environ[key] = value
        self._forget_clients()
        return self

    def __exit__(self, *exc: Any) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
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
