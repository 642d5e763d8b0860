"""A real OCI registry on loopback for tests: Debian's `docker-registry` (CNCF distribution 2.8).

`with LocalRegistry() as reg:` starts `/usr/bin/docker-registry` on 127.0.0.1 and a free
port, storing blobs in a temporary directory that `stop()` removes; `reg.host` is
"127.0.0.1:PORT", reachable over plain http as builders and clients treat loopback.
`LocalRegistry(users={"u": "p"})` turns on htpasswd (Basic) auth with bcrypt hashes, made by
the `bcrypt` package or, failing that, apache2-utils' `htpasswd`.

It is the real registry, so the API is the real one; what it does not model, compared with
Docker Hub, ECR, GCR/Artifact Registry or GHCR: Bearer token auth (it would need a token
server and signing keys), per-repository permissions, TLS, rate limits, redirects of blob
downloads to object storage, repository creation rules (ECR's "create first"), immutable
tags, and garbage collection. It keeps everything until it is stopped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackhop.testing.loopback import StandIn, free_port

if TYPE_CHECKING:
    from stackhop.images.registry import Registry

DEFAULT_BINARY = "/usr/bin/docker-registry"
_INSTALL = "install it with apt-get install docker-registry"


class RegistryUnavailable(RuntimeError):
    """The registry cannot start on this machine; the message says what to install."""


def _bcrypt_line(user: str, password: str) -> str:
    """One htpasswd line; cost 4 (the minimum) because the registry checks it on every request."""
    try:
        import bcrypt
    except ImportError:
        bcrypt = None  # type: ignore[assignment]
    if bcrypt is not None:
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        return f"{user}:{hashed}"
    if shutil.which("htpasswd"):
        done = subprocess.run(["htpasswd", "-niBC", "4", user], input=password, capture_output=True,
                              text=True, check=True)
        return done.stdout.strip()
    raise RegistryUnavailable("LocalRegistry(users=...) needs bcrypt hashes; pip install bcrypt "
                              "(or apt-get install apache2-utils for htpasswd).")


class LocalRegistry(StandIn):
    """A distribution registry process on 127.0.0.1; a context manager, or `start()`/`stop()`."""

    def __init__(self, users: dict[str, str] | None = None, *, binary: str = DEFAULT_BINARY,
                 start_timeout: float = 15.0):
        super().__init__()
        self.users = dict(users or {})
        self.binary = binary
        self.start_timeout = start_timeout
        self.port = 0
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def unavailable(binary: str = DEFAULT_BINARY) -> str | None:
        """Why no registry can start here (for pytest.skip), or None."""
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            return f"{binary} is not installed; {_INSTALL}."
        return None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def registry(self) -> "Registry":
        """A client for it (credentials, if any, come from the environment as usual)."""
        from stackhop.images.registry import Registry

        return Registry(self.host)

    def log_text(self) -> str:
        """The registry's own log (access log included), for a failing test to show."""
        if self._dir is None or not (self._dir / "registry.log").exists():
            return ""
        return (self._dir / "registry.log").read_text(errors="replace")

    def start(self) -> "LocalRegistry":
        reason = self.unavailable(self.binary)
        if reason:
            raise RegistryUnavailable(reason)
        self._dir = Path(tempfile.mkdtemp(prefix="stackhop-registry-"))
        try:
            # The port is only free when probed; a rare race is retried on another one.
            for _attempt in range(3):
                self.port = free_port()
                if self._launch():
                    return self
            raise RegistryUnavailable(f"{self.binary} did not start: {self._last_log_line()}.")
        except BaseException:
            self.stop()
            raise

    def _launch(self) -> bool:
        import yaml

        assert self._dir is not None
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "formatter": "text"},
            "storage": {"filesystem": {"rootdirectory": str(self._dir / "data")}, "delete": {"enabled": True},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if self.users:
            htpasswd = self._dir / "htpasswd"
            htpasswd.write_text("".join(_bcrypt_line(u, p) + "\n" for u, p in self.users.items()))
            config["auth"] = {"htpasswd": {"realm": "stackhop-test", "path": str(htpasswd)}}
        config_path = self._dir / "config.yml"
        config_path.write_text(yaml.safe_dump(config))
        # REGISTRY_* variables override the config file (podman's REGISTRY_AUTH_FILE would add an
        # "auth.file" access controller and stop it starting), so none are passed on.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "OTEL_"))}
        with open(self._dir / "registry.log", "ab") as log:
            self._proc = subprocess.Popen([self.binary, "serve", str(config_path)], stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT, env=env)
        return self._wait_ready()

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        request = urllib.request.Request(f"{self.url}/v2/")
        if self.users:
            user, password = next(iter(self.users.items()))
            request.add_header("Authorization", "Basic " + b64encode(f"{user}:{password}".encode()).decode())
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with opener.open(request, timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self._kill()
        return False

    def _last_log_line(self) -> str:
        lines = [line for line in self.log_text().splitlines() if line.strip()]
        return lines[-1].strip() if lines else "no output"

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def stop(self) -> None:
        """Stop the process and delete everything it stored."""
        self._kill()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
