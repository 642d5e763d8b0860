#!/usr/bin/env python3
"""Regenerate stackhop/adapters/sagemaker/data/instance_types.json from offline sources.

Why a generated file: stackhop must not need boto3/botocore at compile time, yet the list of
SageMaker instance types and their sizes has to come from somewhere we did not write. So this
script reads two things that ship inside pip packages and works offline:

* botocore's SageMaker service model: the `ProcessingInstanceType` and `TrainingInstanceType`
  enums say which `ml.*` types exist and which job kind accepts each;
* moto's EC2 instance-type records (the DescribeInstanceTypes answers moto replays): vCPUs,
  memory, GPU count/manufacturer/model/memory, Neuron devices, burstable flag.

`ml.<family>.<size>` runs on EC2 `<family>.<size>`. Types botocore lists but moto's EC2 data
lacks are kept with the unknowable fields null and a `source` note; the resolver never picks
them. No prices: only package registries are reachable where this was written, so the public
AWS price list could not be read, and we do not invent numbers. Order is by size instead (see
ORDERING).

Run with a Python that has botocore and moto (not the project venv):

    python3 scripts/regenerate_sagemaker_catalog.py            # rewrite the file
    python3 scripts/regenerate_sagemaker_catalog.py --check    # exit 1 if it is stale

`render()` needs neither package, so tests can prove the committed file is in canonical form.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from importlib import metadata, resources
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parents[1] / "stackhop/adapters/sagemaker/data/instance_types.json"

JOB_KIND_ENUMS = {"processing": "ProcessingInstanceType", "training": "TrainingInstanceType"}

ORDERING = (
    "price_per_hour is null for every type: no AWS price list is bundled (it could not be "
    "downloaded where this file was generated, and prices are never guessed). 'Cheapest' therefore "
    "means smallest by the key (gpu_count, vcpus, memory_gib); on equal size a burstable type comes "
    "first where one is allowed, then the name decides. Types with unknown vcpus or memory are never "
    "chosen automatically."
)

FIELDS = {
    "vcpus": "default vCPUs of the EC2 type (null: unknown)",
    "memory_gib": "memory in GiB (EC2 MiB / 1024)",
    "gpu_count": "physical GPUs (0: none)",
    "gpu_manufacturer": "as EC2 names it, e.g. NVIDIA",
    "gpu_model": "as EC2 names it, e.g. T4, A10G, A100, H100",
    "gpu_memory_gib": "memory per GPU in GiB, rounded to 0.01",
    "neuron_count": "AWS Trainium/Inferentia devices (0: none)",
    "neuron_model": "as EC2 names it, e.g. Trainium",
    "burstable": "t* family (CPU credits): unsuitable for long steps",
    "job_kinds": "SageMaker job kinds whose enum lists the type",
    "price_per_hour": "on-demand USD per hour; null: no price list bundled",
    "source": "where the numbers come from",
}

_BURSTABLE_FAMILY = re.compile(r"^t\d")


def _gib(mib: float) -> float | int:
    """MiB to GiB, as an int when whole so the file reads naturally (8, not 8.0)."""
    gib = round(mib / 1024, 2)
    return int(gib) if gib == int(gib) else gib


def _ec2_records() -> dict[str, dict[str, Any]]:
    """moto's EC2 DescribeInstanceTypes records, keyed by EC2 instance type."""
    base = resources.files("moto") / "ec2" / "resources"
    plain, packed = base / "instance_types.json", base / "instance_types.json.gz"
    if plain.is_file():
        return json.loads(plain.read_text())
    return json.loads(gzip.decompress(packed.read_bytes()))


def _enums() -> dict[str, list[str]]:
    """Job kind -> ml.* types botocore's SageMaker model accepts for it."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return {kind: list(model.shape_for(shape).enum) for kind, shape in JOB_KIND_ENUMS.items()}


def _record(name: str, kinds: list[str], ec2: dict[str, Any] | None) -> dict[str, Any]:
    family = name.split(".")[1]
    row: dict[str, Any] = {
        "burstable": bool(_BURSTABLE_FAMILY.match(family)),
        "job_kinds": sorted(kinds),
        "price_per_hour": None,
    }
    if ec2 is None:
        row.update(
            vcpus=None, memory_gib=None, gpu_count=None, gpu_manufacturer=None, gpu_model=None,
            gpu_memory_gib=None, neuron_count=None, neuron_model=None,
            source=f"botocore lists it; moto's EC2 records lack {name[3:]}, so its size is unknown",
        )
        return row
    gpus = (ec2.get("GpuInfo") or {}).get("Gpus") or []
    neurons = (ec2.get("NeuronInfo") or {}).get("NeuronDevices") or []
    if len({(g["Manufacturer"], g["Name"], g["MemoryInfo"]["SizeInMiB"]) for g in gpus}) > 1:
        raise SystemExit(f"{name}: mixed GPU models are not representable in the catalog")
    if len({n["Name"] for n in neurons}) > 1:
        raise SystemExit(f"{name}: mixed Neuron device models are not representable in the catalog")
    row.update(
        vcpus=ec2["VCpuInfo"]["DefaultVCpus"],
        memory_gib=_gib(ec2["MemoryInfo"]["SizeInMiB"]),
        gpu_count=sum(g["Count"] for g in gpus),
        gpu_manufacturer=gpus[0]["Manufacturer"] if gpus else None,
        gpu_model=gpus[0]["Name"] if gpus else None,
        gpu_memory_gib=_gib(gpus[0]["MemoryInfo"]["SizeInMiB"]) if gpus else None,
        neuron_count=sum(n["Count"] for n in neurons),
        neuron_model=neurons[0]["Name"] if neurons else None,
        burstable=row["burstable"] or bool(ec2.get("BurstablePerformanceSupported")),
        source=f"ec2 {name[3:]} (moto)",
    )
    return row


def collect() -> dict[str, Any]:
    """The catalog as a plain dict (needs botocore and moto)."""
    enums = _enums()
    ec2 = _ec2_records()
    kinds_by_type: dict[str, list[str]] = {}
    for kind, names in enums.items():
        for name in names:
            kinds_by_type.setdefault(name, []).append(kind)
    return {
        "fields": FIELDS,
        "generated_from": {"botocore": metadata.version("botocore"), "moto": metadata.version("moto")},
        "generator": "scripts/regenerate_sagemaker_catalog.py",
        "ordering": ORDERING,
        "types": {
            name: _record(name, kinds, ec2.get(name.removeprefix("ml.")))
            for name, kinds in kinds_by_type.items()
        },
    }


def render(catalog: dict[str, Any]) -> str:
    """Canonical text: sorted keys everywhere, one line per instance type, trailing newline.

    One line per type keeps the file small and makes a regeneration diff read as "which types
    changed", which is what a reviewer wants to see.
    """
    dump = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
    lines = ["{"]
    head = sorted(k for k in catalog if k != "types")
    for key in head:
        lines.append(f"  {dump(key)}: {dump(catalog[key])},")
    lines.append('  "types": {')
    names = sorted(catalog["types"])
    for i, name in enumerate(names):
        comma = "," if i < len(names) - 1 else ""
        lines.append(f"    {dump(name)}: {dump(catalog['types'][name])}{comma}")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write (default: the package data file)")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the file differs")
    args = parser.parse_args(argv)
    text = render(collect())
    if args.check:
        current = args.output.read_bytes().decode() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale; rerun {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(text.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
