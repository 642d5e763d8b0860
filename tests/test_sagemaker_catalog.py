"""Specifications of the SageMaker instance-type catalog and resolver.

The catalog is what a SageMaker step costs, so it must cover every type SageMaker accepts, carry
the right sizes, pick the smallest type that fits (no prices are bundled: "cheapest" is "smallest",
and every explanation says so), keep burstable types away from long steps, validate explicit
choices, and fail with the nearest candidates when nothing fits.

botocore and moto are not in the project venv: the comparisons against them skip with a reason;
everything else reads only the bundled JSON.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from stackhop.adapters.sagemaker.catalog import (
    Choice, InstanceTypeError, load_catalog, resolve,
)
from stackhop.core.ir import Accelerator, Resources
from stackhop.errors import StackhopError

GiB = 2**30
REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "scripts" / "regenerate_sagemaker_catalog.py"


def _resources(cpu: float | None = None, mem_gib: float | None = None, gpu: str | None = None,
               count: int = 1, **extra: object) -> Resources:
    return Resources(
        cpu_millicores=int(cpu * 1000) if cpu else None,
        memory_bytes=int(mem_gib * GiB) if mem_gib else None,
        accelerator=Accelerator(type=gpu, count=count) if gpu else None,
        **extra,
    )


def _pick(req: Resources | None, kind: str = "processing", **kw: object) -> Choice:
    return resolve(req, job_kind=kind, where="step 'train'", **kw)  # type: ignore[arg-type]


def _data_text() -> str:
    return resources.files("stackhop.adapters.sagemaker").joinpath("data/instance_types.json").read_text()


# ---------------------------------------------------------------- the data


def _require_generating_versions() -> None:
    """The catalog is a snapshot of the botocore and moto it was generated from; compare only against those."""
    from importlib.metadata import PackageNotFoundError, version

    for name, wanted in load_catalog().generated_from.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            pytest.skip(f"{name} is not installed here; the catalog was generated with {name} {wanted}")
        if have != wanted:
            pytest.skip(f"{name} {have} is installed but the catalog was generated with {name} {wanted}; "
                        "run scripts/regenerate_sagemaker_catalog.py to refresh it")


def test_catalog_covers_every_type_botocore_lists() -> None:
    _require_generating_versions()
    import botocore.session as botocore_session

    model = botocore_session.get_session().get_service_model("sagemaker")
    catalog = load_catalog()
    for kind, shape in (("processing", "ProcessingInstanceType"), ("training", "TrainingInstanceType")):
        listed = set(model.shape_for(shape).enum)
        ours = {t.name for t in catalog.for_kind(kind)}
        assert ours == listed, f"{kind}: missing {sorted(listed - ours)}, extra {sorted(ours - listed)}"


def test_both_job_kinds_have_many_types_and_record_provenance() -> None:
    catalog = load_catalog()
    assert len(catalog.for_kind("processing")) > 50
    assert len(catalog.for_kind("training")) > 50
    assert set(catalog.generated_from) == {"botocore", "moto"}
    assert "price" in catalog.ordering and "size" in catalog.ordering


def test_known_types_have_the_right_numbers() -> None:
    types = load_catalog().types
    m5 = types["ml.m5.large"]
    assert (m5.vcpus, m5.memory_gib, m5.gpu_count, m5.burstable) == (2, 8, 0, False)
    g4 = types["ml.g4dn.xlarge"]
    assert (g4.vcpus, g4.memory_gib, g4.gpu_count, g4.gpu_model, g4.gpu_memory_gib) == (4, 16, 1, "T4", 16)
    assert g4.gpu_manufacturer == "NVIDIA"
    p4d, p4de = types["ml.p4d.24xlarge"], types["ml.p4de.24xlarge"]
    assert (p4d.gpu_count, p4d.gpu_model, p4d.gpu_memory_gib) == (8, "A100", 40)
    assert (p4de.gpu_count, p4de.gpu_model, p4de.gpu_memory_gib) == (8, "A100", 80)
    assert types["ml.t3.medium"].burstable
    assert types["ml.trn1.2xlarge"].neuron_count == 1 and types["ml.trn1.2xlarge"].gpu_count == 0


def test_no_prices_are_invented() -> None:
    assert all(t.price_per_hour is None for t in load_catalog().types.values())


def test_types_without_ec2_records_are_kept_with_unknown_size_and_a_note() -> None:
    unknown = [t for t in load_catalog().types.values() if not t.known]
    assert unknown, "expected some types moto's EC2 data lacks (e.g. ml.p3.*)"
    for t in unknown:
        assert t.vcpus is None and t.memory_gib is None and "lack" in t.source


def test_catalog_file_is_in_canonical_form() -> None:
    """The committed file is exactly what the generator's renderer makes of its own content."""
    spec = importlib.util.spec_from_file_location("regenerate_sagemaker_catalog", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports neither botocore nor moto at module level
    text = _data_text()
    assert module.render(json.loads(text)) == text
    assert list(json.loads(text)["types"]) == sorted(json.loads(text)["types"])


def test_regenerating_yields_identical_bytes(tmp_path: Path) -> None:
    _require_generating_versions()
    out = tmp_path / "instance_types.json"
    subprocess.run([sys.executable, str(GENERATOR), "--output", str(out)], check=True, timeout=120)
    assert out.read_bytes() == _data_text().encode()


# ---------------------------------------------------------------- automatic choice


def test_no_resources_picks_a_small_non_burstable_cpu_type() -> None:
    choice = _pick(None)
    spec = choice.spec
    assert spec is not None
    assert spec.gpu_count == 0 and not spec.neuron_count and not spec.burstable
    assert spec.vcpus == 2 and spec.memory_gib <= 8
    smallest = min((t.vcpus, t.memory_gib) for t in load_catalog().for_kind("processing")
                   if t.known and not t.accelerated and not t.burstable)
    assert (spec.vcpus, spec.memory_gib) == smallest


def test_one_t4_picks_g4dn_xlarge_and_explains_why() -> None:
    choice = _pick(_resources(cpu=2, mem_gib=8, gpu="nvidia-tesla-t4"))
    assert choice.instance_type == "ml.g4dn.xlarge"
    text = choice.explanation
    assert "needs 2 vCPU, 8 GiB, 1× nvidia-tesla-t4" in text
    assert "processing types fit" in text
    assert "ml.g4dn.xlarge is the smallest (4 vCPU, 16 GiB, 1× T4 16 GiB)" in text
    assert "no price list is bundled" in text


def test_a100_memory_variant_decides_between_p4d_and_p4de() -> None:
    assert _pick(_resources(gpu="nvidia-a100-80gb", count=4), "training").instance_type.startswith("ml.p4de.")
    assert _pick(_resources(gpu="nvidia-tesla-a100", count=4), "training").instance_type == "ml.p4d.24xlarge"


def test_cpu_and_memory_use_the_larger_of_request_and_limit() -> None:
    choice = _pick(Resources(cpu_millicores=1000, cpu_limit_millicores=64000,
                             memory_bytes=GiB, memory_limit_bytes=100 * GiB))
    assert choice.spec and choice.spec.vcpus == 64 and choice.spec.memory_gib >= 100
    assert "needs 64 vCPU, 100 GiB" in choice.explanation


def test_64_vcpus_picks_the_smallest_64_vcpu_cpu_type() -> None:
    choice = _pick(_resources(cpu=64))
    assert choice.spec and choice.spec.vcpus == 64 and choice.spec.gpu_count == 0
    assert choice.spec.memory_gib == min(t.memory_gib for t in load_catalog().for_kind("processing")
                                         if t.known and t.vcpus == 64 and not t.accelerated)


def test_training_and_processing_sets_differ() -> None:
    catalog = load_catalog()
    assert {t.name for t in catalog.for_kind("training")} > {t.name for t in catalog.for_kind("processing")}
    eight_a100 = _resources(gpu="nvidia-tesla-a100", count=8)
    assert _pick(eight_a100, "training").instance_type == "ml.p4d.24xlarge"
    with pytest.raises(InstanceTypeError, match="offered for training jobs only"):
        _pick(eight_a100, "processing")


def test_accelerated_types_are_avoided_when_no_accelerator_is_asked_for() -> None:
    choice = _pick(_resources(cpu=4, mem_gib=16), "training")
    assert choice.spec and not choice.spec.accelerated  # not ml.g4dn.xlarge nor ml.trn1.*


def test_types_of_unknown_size_are_never_chosen() -> None:
    for req in (None, _resources(gpu="nvidia-tesla-v100"), _resources(cpu=8, mem_gib=60)):
        choice = _pick(req, "training")
        assert choice.spec and choice.spec.known


def test_disk_does_not_choose_the_type() -> None:
    assert _pick(_resources(cpu=2, disk_bytes=500 * GiB)).instance_type == _pick(_resources(cpu=2)).instance_type


# ---------------------------------------------------------------- burstable types


@pytest.mark.parametrize("timeout, burstable_allowed", [(None, False), (7200, False), (3601, False),
                                                        (3600, True), (600, True)])
def test_burstable_types_only_for_steps_with_a_timeout_of_at_most_an_hour(
        timeout: float | None, burstable_allowed: bool) -> None:
    choice = _pick(None, timeout_seconds=timeout)
    assert choice.spec and choice.spec.burstable is burstable_allowed
    assert ("burstable ml.t* types allowed" if burstable_allowed else "burstable ml.t* types excluded") \
        in choice.explanation
    if timeout is None:
        assert "no timeout" in choice.explanation


# ---------------------------------------------------------------- explicit types


def test_explicit_type_wins_when_it_fits() -> None:
    choice = _pick(_resources(cpu=2, mem_gib=4), explicit="ml.m5.4xlarge")
    assert choice.instance_type == "ml.m5.4xlarge"
    assert "explicit" in choice.explanation


@pytest.mark.parametrize("explicit, kind, req, timeout, words", [
    ("ml.m5.larg", "processing", None, None, ["'ml.m5.larg'", "did you mean ml.m5.large"]),
    ("ml.p4d.24xlarge", "processing", None, None, ["cannot run processing jobs", "training only"]),
    ("ml.m5.large", "processing", _resources(cpu=4), None, ["ml.m5.large", "2 vCPU < 4"]),
    ("ml.m5.large", "processing", _resources(gpu="t4"), None, ["no GPU, not nvidia-tesla-t4"]),
    ("ml.p4d.24xlarge", "training", _resources(gpu="nvidia-a100-80gb"), None, ["A100 40 GiB, not nvidia-a100-80gb"]),
    ("ml.t3.medium", "processing", None, 7200, ["burstable", "2 h"]),
])
def test_explicit_type_is_validated(explicit: str, kind: str, req: Resources | None, timeout: float | None,
                                    words: list[str]) -> None:
    with pytest.raises(InstanceTypeError) as info:
        _pick(req, kind, explicit=explicit, timeout_seconds=timeout)
    message = str(info.value)
    assert message.startswith("step 'train': ")
    for word in words:
        assert word in message


def test_explicit_type_of_unknown_size_is_accepted_but_flagged() -> None:
    choice = _pick(_resources(gpu="v100"), "training", explicit="ml.p3.2xlarge")
    assert choice.instance_type == "ml.p3.2xlarge"
    assert "could not be checked" in choice.explanation


# ---------------------------------------------------------------- nothing fits


def test_unsatisfiable_request_names_step_request_and_three_nearest() -> None:
    with pytest.raises(InstanceTypeError) as info:
        _pick(_resources(gpu="nvidia-tesla-t4", count=16))
    message = str(info.value)
    assert isinstance(info.value, StackhopError)
    assert message.startswith("step 'train': ") and "16× nvidia-tesla-t4" in message
    nearest = message.split("nearest: ")[1]
    assert nearest.startswith("ml.g4dn.12xlarge (48 vCPU, 192 GiB, 4× T4 16 GiB)")
    assert nearest.count("ml.") == 3


def test_accelerator_without_a_sagemaker_type_is_unsatisfiable() -> None:
    with pytest.raises(InstanceTypeError, match="nvidia-tesla-p100"):
        _pick(_resources(gpu="p100"))


def test_too_many_vcpus_is_unsatisfiable() -> None:
    largest = max(t.vcpus for t in load_catalog().for_kind("training") if t.known)
    with pytest.raises(InstanceTypeError, match=rf"1000 vCPU; nearest: ml\.\S+ \({largest} vCPU"):
        _pick(_resources(cpu=1000), "training")


def test_unknown_job_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        _pick(None, "transform")
