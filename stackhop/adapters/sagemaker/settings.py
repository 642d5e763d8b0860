"""The `settings:` section of a SageMaker stack."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackhop.core.adapter import AdapterSettings

RETRYABLE = Literal["Step.SERVICE_FAULT", "Step.THROTTLING", "SageMaker.JOB_INTERNAL_ERROR",
                    "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT"]


class SageMakerSettings(AdapterSettings):
    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$",
                                 description="Execution role for the pipeline and its jobs.")
    default_instance_type: str | None = Field(default=None, description="Used when a step asks for no resources.")
    volume_size_gb: int = Field(default=30, ge=1, le=16384)
    tags: dict[str, str] = Field(default_factory=dict)
    pipeline_name_prefix: str = Field(default="", pattern=r"^[a-zA-Z0-9-]*$")
    training_steps: list[str] = Field(
        default_factory=list,
        description="Steps to run as SageMaker Training jobs instead of Processing jobs (training instance types, "
        "managed spot later); their outputs cannot feed conditions, which read Processing steps' property files.",
    )
    retry_exception_types: list[RETRYABLE] = Field(
        default_factory=lambda: ["SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR", "Step.SERVICE_FAULT"])
    cache_expire_after: str = Field(default="P30D", pattern=r"^P")
    python: str = Field(default="python", description="Python executable inside step images.")
    record_image: str | None = Field(
        default=None, description="Image with stackhop in it that records container steps' outputs (their step "
        "record and PropertyFile); default: the image of the pipeline's first Python step.")
    poll_seconds: float = Field(default=15.0, gt=0)
