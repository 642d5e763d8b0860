"""The `settings:` section of a Vertex AI stack."""

from __future__ import annotations

from pydantic import Field

from stackhop.core.adapter import AdapterSettings


class VertexSettings(AdapterSettings):
    project: str | None = Field(default=None, description="GCP project id; needed to submit, not to compile.")
    location: str = Field(default="us-central1", pattern=r"^[a-z]+-[a-z]+\d+$")
    service_account: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$",
                                        description="Runs the pipeline's steps; default: the Compute Engine default SA.")
    network: str | None = Field(default=None, pattern=r"^projects/[^/]+/global/networks/[^/]+$",
                                description="VPC peering network, projects/<number>/global/networks/<name>.")
    labels: dict[str, str] = Field(default_factory=dict, description="Added to every pipeline job.")
    job_id_prefix: str = Field(default="", pattern=r"^([a-z][a-z0-9-]*)?$")
    python: str = Field(default="python", description="Python executable inside step images.")
    api_endpoint: str | None = Field(default=None, description="Override the regional endpoint (private endpoints, emulators).")
    anonymous: bool = Field(default=False, description="Send no credentials (an emulator only).")
    poll_seconds: float = Field(default=15.0, gt=0)
