"""A strict fake Kubernetes cluster for tests: real HTTP, official schemas, pods as local processes.

`FakeKubernetes` serves the core, batch, RBAC and apiextensions APIs (plus any CRD-registered
custom resources) to the official `kubernetes` client, validates every write with the published
OpenAPI schemas (via `kubernetes-validate`) and the API server's semantic rules, and runs each
Job's pods as local processes so their commands, env and logs are real. Requires the
`kubernetes`, `kubernetes-validate` and `aiohttp` packages (stackhop's `testing` extra).
"""

from .fake import FakeKubernetes

__all__ = ["FakeKubernetes"]
