"""Image references, and the registry client against a real registry (Debian's docker-registry).

Images are written blob by blob through the API (no builder needed, so these stay fast);
auth is checked with the registry's htpasswd mode and credentials found the way docker and
podman store them. Bearer tokens, which distribution only does with a separate token server,
are checked against a small stand-in on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from stackhop.images.errors import ImageError
from stackhop.images.reference import ImageRef, is_loopback, parse_reference
from stackhop.images.registry import OCI_INDEX, OCI_MANIFEST, Credentials, Registry, parse_challenge
from stackhop.testing.loopback import ThreadedServer
from stackhop.testing.registry import LocalRegistry

SKIP_HINT = "install with apt-get install buildah docker-registry busybox-static"
D = "sha256:" + "a" * 64


def one_sentence(message: str) -> None:
    """The errors contract: one line, one sentence, with a fix after the semicolon."""
    assert "\n" not in message and message.endswith("."), message
    assert "; " in message, message


# ---------------------------------------------------------------------------- references


@pytest.mark.parametrize("text, registry, repository, tag, digest", [
    ("python:3.11", "docker.io", "library/python", "3.11", None),
    ("python", "docker.io", "library/python", None, None),
    ("org/image:1", "docker.io", "org/image", "1", None),
    ("docker.io/python", "docker.io", "library/python", None, None),
    ("index.docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36", None),
    ("ghcr.io/org/team/img:v1.2-rc_3", "ghcr.io", "org/team/img", "v1.2-rc_3", None),
    ("localhost/img", "localhost", "img", None, None),
    ("localhost:5000/ml/train:h-abc", "localhost:5000", "ml/train", "h-abc", None),
    ("127.0.0.1:5000/ml/train@" + D, "127.0.0.1:5000", "ml/train", None, D),
    ("registry.example.com/a/b:t@" + D, "registry.example.com", "a/b", "t", D),
    ("[::1]:5000/x:1", "[::1]:5000", "x", "1", None),
    ("my-registry:5000/a__b/c.d-e", "my-registry:5000", "a__b/c.d-e", None, None),
    ("localhost", "docker.io", "library/localhost", None, None),  # nothing follows: a Hub name
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/train:1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
     "train", "1", None),
])
def test_parse_reference(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = parse_reference(text)
    assert ref == ImageRef(registry, repository, tag, digest)
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize("text", [
    "", " python", "python:", "python:3.11 ", "UPPER/case", "python@sha256:abc", "python@md5:" + "a" * 32,
    "a//b", "a/b/", "-a/b", "a/b_", "host:port/x", "python:-bad", "python:" + "x" * 129, "a:b:c",
    "example.com:5000:6000/x", "x" * 256,
])
def test_parse_reference_refuses_malformed(text: str) -> None:
    with pytest.raises(ImageError) as info:
        parse_reference(text)
    one_sentence(str(info.value))
    assert "[registry/]repository[:tag]" in str(info.value)


def test_imageref_canonical_form_and_digest_pin() -> None:
    ref = parse_reference("python:3.11")
    assert str(ref) == "docker.io/library/python:3.11"
    assert ref.api_registry == "registry-1.docker.io" and ref.reference == "3.11"
    pinned = ref.with_digest(D)
    assert str(pinned) == f"docker.io/library/python@{D}" and pinned.reference == D
    assert parse_reference("ghcr.io/a/b").reference == "latest"
    with pytest.raises(ImageError):
        ref.with_digest("sha256:nothex")


def test_loopback_hosts() -> None:
    assert all(map(is_loopback, ["127.0.0.1:5000", "localhost", "localhost:5000", "[::1]:5000", "127.1.2.3"]))
    assert not any(map(is_loopback, ["ghcr.io", "10.0.0.1:5000", "localhost.example.com"]))


def test_challenge_parsing() -> None:
    scheme, params = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                                     'scope="repository:library/python:pull",error="insufficient_scope"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                      "scope": "repository:library/python:pull", "error": "insufficient_scope"}
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


def test_credentials_never_show_secrets() -> None:
    text = repr(Credentials(username="u", password="hunter2", identity_token="tok-secret", source="x"))
    assert "hunter2" not in text and "tok-secret" not in text


# ---------------------------------------------------------------------------- a real registry


@pytest.fixture(autouse=True)
def no_ambient_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Credentials only from what a test writes: an empty DOCKER_CONFIG, HOME and runtime dir."""
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / ".docker"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    return home


def _start(**kwargs: Any) -> Iterator[LocalRegistry]:
    reason = LocalRegistry.unavailable()
    if reason:
        pytest.skip(f"{reason} ({SKIP_HINT})")
    with LocalRegistry(**kwargs) as reg:
        yield reg


@pytest.fixture(scope="module")
def reg_a() -> Iterator[LocalRegistry]:
    yield from _start()


@pytest.fixture(scope="module")
def reg_b() -> Iterator[LocalRegistry]:
    yield from _start()


@pytest.fixture(scope="module")
def reg_auth() -> Iterator[LocalRegistry]:
    yield from _start(users={"alice": "s3cret-pass"})


def push_image(client: Registry, repository: str, tag: str | None, layer: bytes, arch: str = "amd64") -> str:
    """A minimal OCI image (config + one uncompressed layer), written through the API; returns its digest."""
    config = json.dumps({"architecture": arch, "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": client.put_blob(repository, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": client.put_blob(repository, layer), "size": len(layer)}],
    }).encode()
    return client.put_manifest(repository, tag or "sha256:" + hashlib.sha256(manifest).hexdigest(),
                               manifest, OCI_MANIFEST)


class Recorder:
    """Wraps a Registry's transport to record (method, path) of every request it sends."""

    def __init__(self, client: Registry):
        self.calls: list[tuple[str, str]] = []
        send = client._send

        def recording(request: Any, method: str, what: str) -> Any:
            from urllib.parse import urlsplit

            self.calls.append((request.get_method(), urlsplit(request.full_url).path))
            return send(request, method, what)

        client._send = recording  # type: ignore[method-assign]


def test_manifest_digest_resolve_and_exists(reg_a: LocalRegistry) -> None:
    client = reg_a.registry()
    digest = push_image(client, "ml/train", "v1", b"layer-one")
    assert client.manifest_digest("ml/train", "v1") == digest
    assert client.manifest_digest("ml/train", digest) == digest
    assert client.resolve("ml/train:v1") == f"ml/train@{digest}"
    assert client.resolve(f"ml/train@{digest}") == f"ml/train@{digest}"
    assert client.exists("ml/train:v1") and client.exists(f"ml/train@{digest}")
    # A full reference on this registry is accepted, and answered in full.
    assert client.resolve(f"{reg_a.host}/ml/train:v1") == f"{reg_a.host}/ml/train@{digest}"
    assert client.exists(f"{reg_a.host}/ml/train:v1") and not client.exists(f"{reg_a.host}/ml/train:v2")
    body, media_type = client.get_manifest("ml/train", "v1") or (b"", "")
    assert media_type == OCI_MANIFEST and json.loads(body)["schemaVersion"] == 2


def test_missing_images_are_none_and_resolve_says_so(reg_a: LocalRegistry) -> None:
    client = reg_a.registry()
    push_image(client, "ml/present", "v1", b"x")
    assert client.manifest_digest("ml/present", "no-such-tag") is None
    assert client.manifest_digest("never/pushed", "v1") is None
    assert client.manifest_digest("ml/present", D) is None
    assert not client.exists("ml/present:no-such-tag")
    with pytest.raises(ImageError) as info:
        client.resolve("ml/present:no-such-tag")
    one_sentence(str(info.value))
    assert f"{reg_a.host}/ml/present:no-such-tag" in str(info.value)


def test_copy_between_registries_by_digest_in_chunks(reg_a: LocalRegistry, reg_b: LocalRegistry) -> None:
    source = reg_a.registry()
    layer = os.urandom(5000)
    digest = push_image(source, "ml/chunky", "v1", layer)
    dest = Registry(reg_b.host, chunk_size=1024)
    recorder = Recorder(dest)
    assert dest.copy(f"{reg_a.host}/ml/chunky@{digest}", "mirror/chunky", tag="copied") == digest
    assert dest.resolve("mirror/chunky:copied") == f"mirror/chunky@{digest}"
    assert dest.get_manifest("mirror/chunky", digest) == source.get_manifest("ml/chunky", digest)
    patches = [path for method, path in recorder.calls if method == "PATCH"]
    assert len(patches) == 5, recorder.calls  # 5000 bytes in 1 KiB chunks; the config went in one PUT
    # Copying again finds the manifest there and moves nothing.
    recorder.calls.clear()
    assert dest.copy(f"{reg_a.host}/ml/chunky:v1", "mirror/chunky") == digest
    assert [m for m, _ in recorder.calls if m in ("POST", "PATCH")] == []


def test_copy_manifest_list_copies_every_child(reg_a: LocalRegistry, reg_b: LocalRegistry) -> None:
    source = reg_a.registry()
    children = [push_image(source, "ml/multi", None, f"layer-{arch}".encode(), arch) for arch in ("amd64", "arm64")]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": len(source.get_manifest("ml/multi", child)[0]),  # type: ignore[index]
         "platform": {"architecture": arch, "os": "linux"}}
        for child, arch in zip(children, ("amd64", "arm64"))]}).encode()
    index_digest = source.put_manifest("ml/multi", "v1", index, OCI_INDEX)
    dest = reg_b.registry()
    assert dest.copy(f"{reg_a.host}/ml/multi:v1", "mirror/multi") == index_digest
    assert dest.get_manifest("mirror/multi", index_digest) == (index, OCI_INDEX)
    for child in children:
        assert dest.manifest_digest("mirror/multi", child) == child


def test_copy_within_one_registry_mounts_blobs(reg_a: LocalRegistry) -> None:
    client = reg_a.registry()
    digest = push_image(client, "team-a/model", "v1", os.urandom(3000))
    recorder = Recorder(client)
    assert client.copy(f"{reg_a.host}/team-a/model:v1", f"{reg_a.host}/team-b/model") == digest
    assert client.exists(f"team-b/model@{digest}")
    assert [m for m, _ in recorder.calls if m in ("PATCH",)] == []
    assert sum(1 for m, p in recorder.calls if m == "POST" and p.endswith("/blobs/uploads/")) == 2


def test_unreachable_registry_is_one_sentence() -> None:
    from stackhop.testing.loopback import free_port

    with pytest.raises(ImageError) as info:
        Registry(f"127.0.0.1:{free_port()}").exists("a/b:c")
    one_sentence(str(info.value))
    assert "Cannot reach the registry 127.0.0.1:" in str(info.value)


# ---------------------------------------------------------------------------- auth


def _write_docker_config(home: Path, data: dict[str, Any]) -> Path:
    path = home / ".docker" / "config.json"
    path.write_text(json.dumps(data))
    return path


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_htpasswd_registry_without_credentials_says_log_in(reg_auth: LocalRegistry) -> None:
    with pytest.raises(ImageError) as info:
        reg_auth.registry().exists("ml/x:v1")
    one_sentence(str(info.value))
    assert f"docker login {reg_auth.host}" in str(info.value)


def test_htpasswd_registry_with_docker_config(reg_auth: LocalRegistry, no_ambient_credentials: Path) -> None:
    _write_docker_config(no_ambient_credentials, {"auths": {reg_auth.host: {"auth": _auth("alice", "s3cret-pass")}}})
    client = reg_auth.registry()
    digest = push_image(client, "ml/private", "v1", b"private layer")
    assert client.resolve("ml/private:v1") == f"ml/private@{digest}"


def test_wrong_password_is_one_sentence_without_the_secret(reg_auth: LocalRegistry,
                                                           no_ambient_credentials: Path) -> None:
    config = _write_docker_config(no_ambient_credentials,
                                  {"auths": {f"http://{reg_auth.host}": {"auth": _auth("alice", "WRONG-pw")}}})
    with pytest.raises(ImageError) as info:
        reg_auth.registry().exists("ml/x:v1")
    message = str(info.value)
    one_sentence(message)
    assert "rejected the credentials for user 'alice'" in message and str(config) in message
    assert "WRONG-pw" not in message and _auth("alice", "WRONG-pw") not in message


def test_credential_helper_from_docker_config(reg_auth: LocalRegistry, no_ambient_credentials: Path,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(f"#!{sys.executable}\n"
                      "import json, sys\n"
                      "assert sys.argv[1:] == ['get'], sys.argv\n"
                      "server = sys.stdin.read().strip()\n"
                      f"if server != {reg_auth.host!r}: sys.exit('credentials not found in native keychain')\n"
                      "print(json.dumps({'ServerURL': server, 'Username': 'alice', 'Secret': 's3cret-pass'}))\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    _write_docker_config(no_ambient_credentials, {"auths": {reg_auth.host: {}}, "credHelpers": {reg_auth.host: "fake"}})
    assert reg_auth.registry().manifest_digest("ml/none", "v1") is None  # authenticated, and simply absent
    _write_docker_config(no_ambient_credentials, {"credsStore": "fake"})
    assert reg_auth.registry().manifest_digest("ml/none", "v1") is None
    _write_docker_config(no_ambient_credentials, {"credHelpers": {reg_auth.host: "missing"}})
    with pytest.raises(ImageError) as info:
        reg_auth.registry().exists("ml/none:v1")
    one_sentence(str(info.value))
    assert "docker-credential-missing" in str(info.value)


def test_podman_auth_file(reg_auth: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {reg_auth.host: {"auth": _auth("alice", "s3cret-pass")}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    assert reg_auth.registry().manifest_digest("ml/none", "v1") is None
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    xdg = Path(os.environ["XDG_RUNTIME_DIR"]) / "containers"
    xdg.mkdir(parents=True)
    (xdg / "auth.json").write_text(auth_file.read_text())
    assert reg_auth.registry().manifest_digest("ml/none", "v1") is None


# ---------------------------------------------------------------------------- bearer tokens


_LAYER = b"a layer served from object storage"
_CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
_MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + hashlib.sha256(_CONFIG).hexdigest(), "size": len(_CONFIG)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": "sha256:" + hashlib.sha256(_LAYER).hexdigest(), "size": len(_LAYER)}]}).encode()
_MANIFEST_DIGEST = "sha256:" + hashlib.sha256(_MANIFEST).hexdigest()


class _TokenRegistry(BaseHTTPRequestHandler):
    """A registry wanting a Bearer token from its own /token realm, as Docker Hub and GHCR do.

    Blob downloads redirect to /storage/, like a registry backed by S3 or GCS, which must not
    be sent the registry's token.
    """

    token_requests: list[dict[str, Any]] = []
    storage_auth: list[str | None] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == "Bearer good-token":
            return True
        realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.send_response(401)
        self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="fake.test",scope="repository:ml/x:pull"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        if self._authorized():
            found = self.path in ("/v2/ml/x/manifests/v1", f"/v2/ml/x/manifests/{_MANIFEST_DIGEST}")
            self._reply(200 if found else 404, headers={"Docker-Content-Digest": _MANIFEST_DIGEST} if found else {})

    def do_GET(self) -> None:
        from urllib.parse import parse_qs, urlsplit

        url = urlsplit(self.path)
        if url.path == "/token":
            return self._token(parse_qs(url.query))
        if url.path.startswith("/storage/"):
            self.storage_auth.append(self.headers.get("Authorization"))
            blobs = {"sha256:" + hashlib.sha256(b).hexdigest(): b for b in (_LAYER, _CONFIG)}
            return self._reply(200, blobs[url.path.rsplit("/", 1)[1]])
        if not self._authorized():
            return None
        if url.path in ("/v2/ml/x/manifests/v1", f"/v2/ml/x/manifests/{_MANIFEST_DIGEST}"):
            return self._reply(200, _MANIFEST, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": _MANIFEST_DIGEST})
        if url.path.startswith("/v2/ml/x/blobs/"):
            return self._reply(307, headers={"Location": "/storage/" + url.path.rsplit("/", 1)[1]})
        return self._reply(404)

    def _token(self, params: dict[str, list[str]], body: str = "") -> None:
        from urllib.parse import parse_qs

        form = parse_qs(body)
        self.token_requests.append({"method": self.command, "auth": self.headers.get("Authorization"),
                                    "query": params, "form": form})
        ok = (self.headers.get("Authorization") == "Basic " + _auth("bob", "pw")
              or form.get("refresh_token") == ["refresh-me"])
        payload = json.dumps({"token": "good-token"} if self.command == "GET" else {"access_token": "good-token"})
        self._reply(200 if ok else 401, payload.encode() if ok else b"{}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._token({}, self.rfile.read(length).decode())


@pytest.fixture
def token_registry() -> Iterator[str]:
    _TokenRegistry.token_requests, _TokenRegistry.storage_auth = [], []
    with ThreadedServer("the token registry", lambda address: ThreadingHTTPServer(address, _TokenRegistry),
                        thread_name="token-registry") as server:
        yield server.address


def test_bearer_token_with_basic_credentials(token_registry: str, no_ambient_credentials: Path) -> None:
    _write_docker_config(no_ambient_credentials, {"auths": {token_registry: {"auth": _auth("bob", "pw")}}})
    client = Registry(token_registry)
    assert client.manifest_digest("ml/x", "v1") == _MANIFEST_DIGEST
    assert client.manifest_digest("ml/x", "v2") is None  # the cached token is reused
    (request,) = _TokenRegistry.token_requests
    assert request["method"] == "GET" and request["query"] == {"service": ["fake.test"],
                                                               "scope": ["repository:ml/x:pull"]}


def test_bearer_token_from_identity_token(token_registry: str, no_ambient_credentials: Path) -> None:
    _write_docker_config(no_ambient_credentials, {"auths": {token_registry: {"identitytoken": "refresh-me"}}})
    assert Registry(token_registry).manifest_digest("ml/x", "v1") == _MANIFEST_DIGEST
    (request,) = _TokenRegistry.token_requests
    assert request["method"] == "POST" and request["auth"] is None
    assert request["form"]["grant_type"] == ["refresh_token"] and request["form"]["scope"] == ["repository:ml/x:pull"]


def test_bearer_token_refused(token_registry: str, no_ambient_credentials: Path) -> None:
    _write_docker_config(no_ambient_credentials, {"auths": {token_registry: {"auth": _auth("bob", "nope")}}})
    with pytest.raises(ImageError) as info:
        Registry(token_registry).exists("ml/x:v1")
    one_sentence(str(info.value))
    assert "rejected the credentials for user 'bob'" in str(info.value) and "nope" not in str(info.value)


def test_copy_from_a_token_registry_never_sends_the_token_to_storage(
        token_registry: str, reg_b: LocalRegistry, no_ambient_credentials: Path) -> None:
    _write_docker_config(no_ambient_credentials, {"auths": {token_registry: {"auth": _auth("bob", "pw")}}})
    dest = reg_b.registry()
    assert dest.copy(f"{token_registry}/ml/x:v1", "mirror/from-token", tag="v1") == _MANIFEST_DIGEST
    assert dest.get_manifest("mirror/from-token", "v1") == (_MANIFEST, OCI_MANIFEST)
    assert _TokenRegistry.storage_auth == [None, None]  # config and layer, fetched without the token
