"""The `settings:` section of a Kubernetes stack."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackhop.core.adapter import AdapterSettings
from stackhop.core.image_settings import Reference
from stackhop.core.ir import Toleration


class KubernetesSettings(AdapterSettings):
    kubeconfig: str | None = Field(default=None, description="Path to a kubeconfig; default: $KUBECONFIG or ~/.kube/config.")
    context: str | None = Field(default=None, description="kubeconfig context; default: the current one.")
    in_cluster: bool = Field(default=False, description="Use the pod's service account instead of a kubeconfig.")
    namespace: str = Field(default="default", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    service_account: str | None = Field(default=None, description="serviceAccountName for step pods.")
    image_pull_secrets: list[str] = Field(default_factory=list)
    ttl_seconds_after_finished: int | None = Field(default=86400, ge=0)
    accelerator_label: str = Field(
        default="cloud.google.com/gke-accelerator",
        description="Node label that names the GPU model; its value is the canonical accelerator name "
        "unless accelerator_values maps it.",
    )
    accelerator_values: dict[str, str] = Field(default_factory=dict, description="canonical accelerator -> label value")
    gpu_toleration: bool = Field(default=True, description="Tolerate the nvidia.com/gpu taint on GPU steps.")
    tolerations: list[Toleration] = Field(default_factory=list, description="Added to every step pod.")
    labels: dict[str, str] = Field(default_factory=dict, description="Added to every object stackhop creates.")
    driver: Literal["client", "in-cluster"] = "client"
    driver_image: Reference | None = Field(default=None,
                                           description="Image of the in-cluster driver Job (needs stackhop).")
    driver_restarts: int = Field(default=3, ge=0, le=100, description=(
        "How many times the in-cluster driver's Job replaces a driver pod that was deleted or crashed; the new "
        "driver continues the same run from its state in the artifact store, without starting finished steps again."))
    stackhop_image: Reference | None = Field(
        default=None, description="Image with stackhop that stages inputs and saves outputs beside container steps; "
        "default: the first Python step's image, then driver_image, then defaults.image.")
    output_grace_seconds: int = Field(
        default=300, ge=1, description="How long a container step's pod may take to save its outputs after the "
        "command exits (the pod's terminationGracePeriodSeconds).")
    python: str = Field(default="python", description="Python executable inside step images.")
    poll_seconds: float = Field(default=2.0, gt=0)
    pending_grace_seconds: float = Field(
        default=60.0, ge=0, description="How long a pod may wait on ImagePullBackOff and friends before the step fails."
    )
