"""A small client for the OCI distribution API: resolve tags to digests, check images, copy them.

Why not a library: stackhop only needs a handful of calls (HEAD a manifest, copy blobs by
digest, log in the way `docker` does), and urllib keeps the core free of a heavy dependency
that would have to run on every CI and every user's laptop.

Credentials are read only from where `docker` and `podman`/`buildah` keep them, in this
order: `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`),
`$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`. In each file a
`credHelpers.<host>` entry wins, then `auths.<host>` (base64 `user:password`, or an
`identitytoken`), then `credsStore`; helpers run as `docker-credential-<name> get`. Secrets
never appear in messages or reprs.

Requests go anonymous first; a 401 names the scheme: Bearer (fetch a token from the realm it
names, with the credentials if there are any) or Basic. Loopback registries are plain http
unless told otherwise, as with docker's default insecure range.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from stackhop.images.errors import ImageError
from stackhop.images.reference import DOCKER_HUB, DOCKER_HUB_API, ImageRef, is_digest, is_loopback, parse_reference

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))

_HUB_HOSTS = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_API})
_HUB_HELPER_KEY = "https://index.docker.io/v1/"  # what `docker login` files Docker Hub under
_MAX_MANIFEST = 4 << 20  # OCI's suggested limit; anything larger is not a manifest
_TIMEOUT = 60.0
_HELPER_TIMEOUT = 30.0
_LOGIN_HINT = "stackhop reads docker's and podman's auth files and credential helpers"


# ---------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Credentials:
    """A login for one registry; `source` says where it was found, for error messages only."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = ""


def _auth_files() -> list[Path]:
    files: list[Path] = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    docker_dir = os.environ.get("DOCKER_CONFIG")
    files.append(Path(docker_dir) / "config.json" if docker_dir else Path.home() / ".docker" / "config.json")
    if os.environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    files.append(Path.home() / ".config" / "containers" / "auth.json")
    return files


def _key_host(key: str) -> str:
    """`https://index.docker.io/v1/` -> `index.docker.io`; a key with a repository path stays as it is."""
    host = re.sub(r"^[a-z]+://", "", key)
    return re.sub(r"/(v1|v2)?/?$", "", host)


def _same_host(a: str, b: str) -> bool:
    return a == b or (a in _HUB_HOSTS and b in _HUB_HOSTS)


def _run_helper(name: str, server: str, host: str, source: Path) -> Credentials | None:
    binary = f"docker-credential-{name}"
    if shutil.which(binary) is None:
        raise ImageError(f"The credential helper {binary} that {source} names for {host} is not installed; "
                         f"install it or remove it from that file.")
    try:
        done = subprocess.run([binary, "get"], input=server, capture_output=True, text=True,
                              timeout=_HELPER_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise ImageError(f"The credential helper {binary} did not answer for {host} within "
                         f"{_HELPER_TIMEOUT:.0f} s; check that it can run without a prompt.") from None
    if done.returncode != 0:
        return None  # helpers exit non-zero for "no credentials for this server"
    try:
        answer = json.loads(done.stdout)
        user, secret = str(answer.get("Username", "")), str(answer.get("Secret", ""))
    except (ValueError, AttributeError):
        raise ImageError(f"The credential helper {binary} printed something other than JSON for {host}; "
                         f"check that it is a docker credential helper.") from None
    where = f"{binary} (named in {source})"
    if user == "<token>":
        return Credentials(identity_token=secret, source=where)
    return Credentials(username=user, password=secret, source=where)


def _from_entry(entry: Any, host: str, source: Path) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise ImageError(f"The auth entry for {host} in {source} is not base64 of user:password; "
                             f"log in to {host} again.")
    token = str(entry.get("identitytoken") or "")
    if not (user or password or token):
        return None  # an empty placeholder, as docker writes when a credsStore holds the secret
    return Credentials(username=user, password=password, identity_token=token, source=str(source))


def find_credentials(host: str) -> Credentials | None:
    """The login for `host` from the usual places (see the module docstring), or None for anonymous."""
    for path in _auth_files():
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            raise ImageError(f"The auth file {path} is not readable JSON; fix it or log in again.") from None
        if not isinstance(data, dict):
            continue
        server = _HUB_HELPER_KEY if host in _HUB_HOSTS else host
        for key, helper in (data.get("credHelpers") or {}).items():
            if _same_host(_key_host(key), host) and helper:
                found = _run_helper(str(helper), server, host, path)
                if found:
                    return found
        for key, entry in (data.get("auths") or {}).items():
            if _same_host(_key_host(key), host):
                found = _from_entry(entry, host, path)
                if found:
                    return found
        if data.get("credsStore"):
            found = _run_helper(str(data["credsStore"]), server, host, path)
            if found:
                return found
    return None


# ---------------------------------------------------------------------------- http


_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"([^"]*)"|([^,\s]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="...",scope="..."` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _CHALLENGE_PARAM.finditer(rest)}
    return scheme.lower(), params


def _pull(repository: str) -> str:
    return f"repository:{repository}:pull"


def _push(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _show(host: str, repository: str, reference: str) -> str:
    """host/repo:tag or host/repo@digest, for messages."""
    return f"{host}/{repository}{'@' if is_digest(reference) else ':'}{reference}"


def _content_type(headers: Any) -> str:
    return str(headers.get("Content-Type") or "").split(";")[0].strip()


def _digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _read_full(stream: Any, size: int) -> bytes:
    """Read `size` bytes unless the stream ends first (a plain read may return less)."""
    parts, want = [], size
    while want > 0:
        part = stream.read(want)
        if not part:
            break
        parts.append(part)
        want -= len(part)
    return b"".join(parts)


class Registry:
    """One registry host.

    Repositories and refs are paths on it ("ml/train", "ml/train:tag"); a full reference that
    starts with this host ("127.0.0.1:5000/ml/train:tag") is accepted too, and `resolve`
    answers in the form it was asked in. Only `copy`'s source is always a full reference,
    because it may live on another registry.
    """

    def __init__(self, host: str, *, insecure: bool | None = None, chunk_size: int = 8 << 20):
        self.host = DOCKER_HUB if host in _HUB_HOSTS else host
        self.insecure = is_loopback(self.host) if insecure is None else insecure
        """Plain http instead of https (loopback registries by default)."""
        self.chunk_size = chunk_size
        """Blobs larger than this are uploaded in PATCH chunks of this size; smaller ones in one PUT."""
        api = DOCKER_HUB_API if self.host == DOCKER_HUB else self.host
        self.base_url = f"{'http' if self.insecure else 'https'}://{api}"
        handlers: list[Any] = [urllib.request.ProxyHandler({})] if is_loopback(self.host) else []
        self._opener = urllib.request.build_opener(*handlers)
        self._tokens: dict[tuple[str, ...], str] = {}
        self._basic: str | None = None
        self._credentials: Credentials | None = None
        self._looked_up = False

    def __repr__(self) -> str:
        return f"Registry({self.host!r}, insecure={self.insecure})"

    # ------------------------------------------------------------------ public API

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest `reference` (a tag or digest) points to, or None when the registry has no such manifest."""
        with self._open("HEAD", f"/v2/{repository}/manifests/{reference}", (_pull(repository),),
                        headers={"Accept": ACCEPT}) as resp:
            if resp.status == 404:
                return None
            self._expect(resp, (200,), f"looking up {_show(self.host, repository, reference)}")
            digest = resp.headers.get("Docker-Content-Digest")
        if digest and is_digest(digest):
            return digest
        found = self.get_manifest(repository, reference)
        return None if found is None else _digest_of(found[0])

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        """(exact bytes, media type) of a manifest, or None when missing; a digest reference is verified."""
        what = f"fetching the manifest {_show(self.host, repository, reference)}"
        with self._open("GET", f"/v2/{repository}/manifests/{reference}", (_pull(repository),),
                        headers={"Accept": ACCEPT}) as resp:
            if resp.status == 404:
                return None
            self._expect(resp, (200,), what)
            body = resp.read(_MAX_MANIFEST + 1)
            media_type = _content_type(resp.headers)
        if len(body) > _MAX_MANIFEST:
            raise ImageError(f"The manifest {_show(self.host, repository, reference)} is larger than 4 MiB; "
                             f"check that the reference names an image.")
        if is_digest(reference) and _digest_of(body, reference.split(":")[0]) != reference:
            raise ImageError(f"The registry {self.host} returned a manifest for {repository}@{reference} "
                             f"whose content does not match that digest; check the registry or any proxy in between.")
        if media_type not in INDEX_TYPES | MANIFEST_TYPES:
            try:
                media_type = str(json.loads(body).get("mediaType") or media_type)
            except (ValueError, AttributeError):
                pass
        return body, media_type

    def resolve(self, ref: str) -> str:
        """"repo:tag" -> "repo@sha256:..." (a full reference gives a full one); ImageError when missing."""
        image, full = self._parse(ref)
        digest = self.manifest_digest(image.repository, image.reference)
        if digest is None:
            raise ImageError(f"The image {image} is not in its registry; push it first, or check the name and tag.")
        return str(image.with_digest(digest)) if full else f"{image.repository}@{digest}"

    def exists(self, ref: str) -> bool:
        """Whether "repo:tag" or "repo@digest" is in this registry."""
        image, _ = self._parse(ref)
        return self.manifest_digest(image.repository, image.reference) is not None

    def put_blob(self, repository: str, data: bytes) -> str:
        """Upload `data` as a blob (skipped when already there); returns its digest."""
        digest = _digest_of(data)
        if not self._blob_exists(repository, digest):
            location, _ = self._start_upload(repository)
            assert location is not None
            self._finish_upload(repository, location, digest, data)
        return digest

    def put_manifest(self, repository: str, reference: str, manifest: bytes, media_type: str) -> str:
        """Store a manifest under a tag or its digest; returns its digest, checked against the registry's."""
        digest = _digest_of(manifest)
        with self._open("PUT", f"/v2/{repository}/manifests/{reference}", (_push(repository),),
                        headers={"Content-Type": media_type}, data=manifest) as resp:
            self._expect(resp, (200, 201), f"pushing the manifest {_show(self.host, repository, reference)}")
            reported = resp.headers.get("Docker-Content-Digest")
        if reported and reported != digest:
            raise ImageError(f"The registry {self.host} stored {_show(self.host, repository, reference)} as {reported}, not {digest}; "
                             f"it rewrote the manifest, so pin the digest it reports.")
        return digest

    def copy(self, src_ref: str, dst_repository: str, *, tag: str | None = None,
             source: "Registry | None" = None) -> str:
        """Copy the image `src_ref` (a full reference, any registry) into `dst_repository` on this registry.

        Blobs move by digest (mounted across repositories when both are here, else streamed),
        manifest lists with every child, and the manifest bytes are kept exactly, so the digest
        is the same on both sides; it is returned. `tag` also tags it here. `source` is the
        Registry to read from when the default (insecure for loopback) does not fit.
        """
        src = parse_reference(src_ref)
        if source is None:
            source = self if src.registry == self.host else Registry(src.registry)
        elif not _same_host(source.host, src.registry):
            raise ImageError(f"The source registry {source.host} is not the registry of {src}; pass the matching one.")
        dst, _ = self._parse(dst_repository)
        if dst.tag is not None or dst.digest is not None:
            raise ImageError(f"The copy destination {dst_repository!r} must be a repository without a tag or digest; "
                             f"pass the tag as tag=.")
        found = source.get_manifest(src.repository, src.reference)
        if found is None:
            raise ImageError(f"The image {src} is not in its registry; push it first, or check the name and tag.")
        digest = self._copy_manifest(source, src.repository, found[0], found[1], dst.repository)
        if tag is not None:
            self.put_manifest(dst.repository, tag, found[0], found[1])
        return digest

    # ------------------------------------------------------------------ copying

    def _copy_manifest(self, source: "Registry", src_repo: str, body: bytes, media_type: str, dst_repo: str) -> str:
        digest = _digest_of(body)
        if self.manifest_digest(dst_repo, digest) == digest:
            return digest
        doc = json.loads(body)
        if media_type in INDEX_TYPES:
            for child in doc.get("manifests", []):
                found = source.get_manifest(src_repo, child["digest"])
                if found is None:
                    raise ImageError(f"The manifest list {source.host}/{src_repo}@{digest} names {child['digest']}, "
                                     f"which the registry does not have; push the image again.")
                self._copy_manifest(source, src_repo, found[0], found[1], dst_repo)
        elif media_type in MANIFEST_TYPES:
            for desc in (doc["config"], *doc.get("layers", [])):
                kind = str(desc.get("mediaType", ""))
                if "foreign" in kind or "nondistributable" in kind:
                    continue  # such layers are fetched from their own URLs, never pushed
                self._copy_blob(source, src_repo, desc["digest"], desc.get("size"), dst_repo)
        else:
            raise ImageError(f"The image {source.host}/{src_repo}@{digest} has a {media_type or 'untyped'} manifest, "
                             f"which stackhop cannot copy; push it again with a current docker or buildah.")
        return self.put_manifest(dst_repo, digest, body, media_type)

    def _copy_blob(self, source: "Registry", src_repo: str, digest: str, size: int | None, dst_repo: str) -> None:
        if self._blob_exists(dst_repo, digest):
            return
        same = source.base_url == self.base_url
        location, min_chunk = self._start_upload(dst_repo, mount=(digest, src_repo) if same else None)
        if location is None:
            return  # mounted: the registry linked the blob it already had
        what = f"reading the blob {digest} of {source.host}/{src_repo}"
        with source._open("GET", f"/v2/{src_repo}/blobs/{digest}", (_pull(src_repo),)) as resp:
            source._expect(resp, (200,), what)
            length = resp.headers.get("Content-Length")
            algorithm = digest.split(":")[0]
            if length is not None and int(length) <= self.chunk_size:
                data = resp.read()
                self._check_blob(source, src_repo, digest, size, _digest_of(data, algorithm), len(data))
                self._finish_upload(dst_repo, location, digest, data)
                return
            hasher, offset = hashlib.new(algorithm), 0
            chunk_size = max(self.chunk_size, min_chunk)
            while chunk := _read_full(resp, chunk_size):
                hasher.update(chunk)
                location = self._patch(dst_repo, location, offset, chunk)
                offset += len(chunk)
        self._check_blob(source, src_repo, digest, size, f"{algorithm}:{hasher.hexdigest()}", offset)
        self._finish_upload(dst_repo, location, digest, b"")

    @staticmethod
    def _check_blob(source: "Registry", repo: str, digest: str, size: int | None, got: str, got_size: int) -> None:
        if got != digest or (size is not None and got_size != size):
            raise ImageError(f"The blob {digest} read from {source.host}/{repo} does not match its digest or size; "
                             f"retry, and check the registry or any proxy in between.")

    def _blob_exists(self, repository: str, digest: str) -> bool:
        with self._open("HEAD", f"/v2/{repository}/blobs/{digest}", (_pull(repository),)) as resp:
            if resp.status == 404:
                return False
            self._expect(resp, (200,), f"checking the blob {digest} in {self.host}/{repository}")
            return True

    def _start_upload(self, repository: str, mount: tuple[str, str] | None = None) -> tuple[str | None, int]:
        """POST an upload; (None, 0) when the mount worked, else (upload URL, the registry's minimum chunk)."""
        path, scopes = f"/v2/{repository}/blobs/uploads/", [_push(repository)]
        if mount is not None:
            path += "?" + urllib.parse.urlencode({"mount": mount[0], "from": mount[1]})
            scopes.append(_pull(mount[1]))
        with self._open("POST", path, tuple(scopes), data=b"") as resp:
            if resp.status == 201 and mount is not None:
                return None, 0
            self._expect(resp, (202,), f"starting an upload to {self.host}/{repository}")
            return self._location(resp), int(resp.headers.get("OCI-Chunk-Min-Length") or 0)

    def _patch(self, repository: str, location: str, offset: int, chunk: bytes) -> str:
        headers = {"Content-Type": "application/octet-stream",
                   "Content-Range": f"{offset}-{offset + len(chunk) - 1}"}
        with self._open("PATCH", location, (_push(repository),), headers=headers, data=chunk) as resp:
            self._expect(resp, (202,), f"uploading to {self.host}/{repository}")
            return self._location(resp)

    def _finish_upload(self, repository: str, location: str, digest: str, data: bytes) -> None:
        url = location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})
        with self._open("PUT", url, (_push(repository),), data=data,
                        headers={"Content-Type": "application/octet-stream"}) as resp:
            self._expect(resp, (201,), f"finishing the upload of {digest} to {self.host}/{repository}")

    def _location(self, resp: Any) -> str:
        location = resp.headers.get("Location")
        if not location:
            raise ImageError(f"The registry {self.host} started an upload without a Location header; "
                             f"it is not a distribution-API registry.")
        return urllib.parse.urljoin(self.base_url + "/", location)

    # ------------------------------------------------------------------ requests and auth

    def _parse(self, ref: str) -> tuple[ImageRef, bool]:
        """(parsed ref, whether it was written in full); see the class docstring."""
        first = ref.split("/", 1)[0]
        if "/" in ref and _same_host(first, self.host):
            return parse_reference(ref), True
        return parse_reference(f"{self.host}/{ref}"), False

    def _open(self, method: str, path_or_url: str, scopes: tuple[str, ...], *,
              headers: dict[str, str] | None = None, data: bytes | None = None) -> Any:
        """Send with whatever auth is cached; on a 401 authenticate once as challenged and resend.

        Returns the response (an error response too, so callers decide what 404 means).
        Authorization is an unredirected header: blob GETs redirect to storage (S3, GCS), which
        must not receive the registry's token.
        """
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        for attempt in range(2):
            request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
            auth = self._tokens.get(tuple(sorted(scopes))) or self._basic
            if auth:
                request.add_unredirected_header("Authorization", auth)
            resp = self._send(request, method, path_or_url)
            if resp.status != 401:
                return resp
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.close()
            if attempt == 0:
                self._authenticate(challenge, scopes)
        raise self._rejected()

    def _send(self, request: urllib.request.Request, method: str, what: str) -> Any:
        try:
            return self._opener.open(request, timeout=_TIMEOUT)
        except urllib.error.HTTPError as err:
            return err
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", err)
            hint = ("pass insecure=True if it only speaks plain http" if "SSL" in str(reason) or "ssl" in str(reason)
                    else "check the host name and that the registry is running")
            raise ImageError(f"Cannot reach the registry {self.host} ({method} {urllib.parse.urlsplit(what).path}: "
                             f"{reason}); {hint}.") from None

    def _creds(self) -> Credentials | None:
        if not self._looked_up:
            self._credentials, self._looked_up = find_credentials(self.host), True
        return self._credentials

    def _rejected(self) -> ImageError:
        creds = self._creds()
        if creds is None:
            return ImageError(f"The registry {self.host} requires a login; run `docker login {self.host}` "
                              f"or `buildah login {self.host}` ({_LOGIN_HINT}).")
        who = f"user {creds.username!r}" if creds.username else "the identity token"
        return ImageError(f"The registry {self.host} rejected the credentials for {who} from {creds.source}; "
                          f"log in again with `docker login {self.host}` or `buildah login {self.host}`.")

    def _authenticate(self, challenge: str, scopes: tuple[str, ...]) -> None:
        scheme, params = parse_challenge(challenge)
        creds = self._creds()
        if scheme == "basic":
            if creds is None or not (creds.username or creds.password):
                raise self._rejected()
            pair = f"{creds.username}:{creds.password}".encode()
            self._basic = "Basic " + base64.b64encode(pair).decode()
        elif scheme == "bearer" and params.get("realm"):
            self._tokens[tuple(sorted(scopes))] = "Bearer " + self._fetch_token(params, scopes, creds)
        else:
            raise ImageError(f"The registry {self.host} asked for {challenge or 'an unnamed'} authentication, "
                             f"which stackhop does not speak; use a registry with Basic or Bearer token auth.")

    def _fetch_token(self, params: dict[str, str], scopes: Iterable[str], creds: Credentials | None) -> str:
        wanted = sorted({*scopes, *params.get("scope", "").split()} - {""})
        realm, service = params["realm"], params.get("service", "")
        headers: dict[str, str] = {}
        if creds is not None and creds.identity_token:
            # An identity token is an OAuth2 refresh token: exchange it, as `docker` does.
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "service": service,
                    "scope": " ".join(wanted), "client_id": "stackhop"}
            request = urllib.request.Request(realm, data=urllib.parse.urlencode(form).encode(), method="POST",
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            query = urllib.parse.urlencode([("service", service)] * bool(service) + [("scope", s) for s in wanted])
            request = urllib.request.Request(f"{realm}{'&' if '?' in realm else '?'}{query}", method="GET")
            if creds is not None and (creds.username or creds.password):
                pair = f"{creds.username}:{creds.password}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        for key, value in headers.items():
            request.add_unredirected_header(key, value)
        with self._send(request, request.get_method(), realm) as resp:
            if resp.status in (401, 403):
                raise self._rejected()
            self._expect(resp, (200,), f"fetching a token from {urllib.parse.urlsplit(realm).netloc}")
            try:
                answer = json.loads(resp.read())
                token = str(answer.get("token") or answer.get("access_token") or "")
            except (ValueError, AttributeError):
                token = ""
        if not token:
            raise ImageError(f"The token service of {self.host} answered without a token; "
                             f"check the registry's auth configuration.")
        return token

    def _expect(self, resp: Any, statuses: tuple[int, ...], what: str) -> None:
        if resp.status in statuses:
            return
        detail = ""
        try:
            errors = json.loads(resp.read(65536) or b"{}").get("errors") or []
            if errors:
                detail = f" {errors[0].get('code', '')}: {errors[0].get('message', '')}".rstrip(": ")
        except (ValueError, AttributeError, OSError):
            pass
        if resp.status == 403:
            creds = self._creds()
            who = f"the credentials from {creds.source}" if creds else "anonymous access"
            raise ImageError(f"The registry {self.host} denied {what} (403{detail}); "
                             f"check that {who} may do that.")
        raise ImageError(f"The registry {self.host} answered {resp.status}{detail} when {what}; "
                         f"check the name, and the registry's logs if it persists.")
