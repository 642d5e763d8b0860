"""The `settings:` section of a Kubeflow Pipelines stack."""

from __future__ import annotations

from pydantic import Field

from stackhop.core.adapter import AdapterSettings


class KubeflowSettings(AdapterSettings):
    host: str | None = Field(default=None, description="KFP API endpoint, e.g. http://localhost:8080; needed to submit.")
    namespace: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
                                  description="Profile namespace on multi-user deployments.")
    experiment: str = Field(default="stackhop", min_length=1, description="Runs are filed under this experiment.")
    service_account: str | None = Field(default=None, description="Kubernetes service account for the run's pods.")
    token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                  description="Environment variable holding a bearer token for the API (never the token).")
    image_pull_secrets: list[str] = Field(default_factory=list)
    accelerator_label: str = Field(default="cloud.google.com/gke-accelerator",
                                   description="Node label naming the GPU model; its value is the canonical accelerator name.")
    accelerator_values: dict[str, str] = Field(default_factory=dict, description="canonical accelerator -> label value")
    accelerator_resource: str = Field(default="nvidia.com/gpu", description="The extended resource a GPU step asks for.")
    gpu_toleration: bool = Field(default=True, description="Tolerate the nvidia.com/gpu taint on GPU steps.")
    python: str = Field(default="python", description="Python executable inside step images.")
    poll_seconds: float = Field(default=5.0, gt=0)
