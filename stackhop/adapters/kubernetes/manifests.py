"""IR -> Kubernetes manifests (pure), and binding those templates to one run.

`compile` emits valid objects that do not mention any run: one Job per step, each resource
op's manifest (its action, conditions and parametrised fields as annotations) and, for the
in-cluster driver, its ServiceAccount, Role, RoleBinding and Job. `bind_*` turns a template
into the object one run creates: the run token appended to the name, the run label,
STACKHOP_RUN_ID, the loop index, the owner and the run's values of the pipeline parameters a
resource op's manifest uses. Nothing else changes between compile and submit, which is what
lets CI diff compiled documents and promotion re-target them.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from stackhop.adapters.kubernetes.container import ANN_FILL, MainCommand, pod_parts
from stackhop.adapters.kubernetes.names import bound_name, dns_label, job_bases, label_value
from stackhop.adapters.kubernetes.settings import KubernetesSettings
from stackhop.core import ir
from stackhop.core.quantities import format_bytes, format_cpu
from stackhop.errors import PipelineDefinitionError

LABEL_RUN = "stackhop.dev/run"
LABEL_PIPELINE = "stackhop.dev/pipeline"
LABEL_STEP = "stackhop.dev/step"
LABEL_ROLE = "stackhop.dev/role"
ANN_STEP = "stackhop.dev/step-name"
ANN_ACTION = "stackhop.dev/action"
ANN_SUCCESS = "stackhop.dev/success-condition"
ANN_FAILURE = "stackhop.dev/failure-condition"
ANN_OUTPUTS = "stackhop.dev/outputs"
ANN_PARAMETERS = "stackhop.dev/parameters"
GPU_RESOURCE = "nvidia.com/gpu"
_ZERO: dict[str, Any] = {"str": "", "int": 0, "float": 0.0, "bool": False, "list": [], "dict": {}}
CLUSTER_SCOPED = {"Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding",
                  "CustomResourceDefinition", "PriorityClass", "IngressClass", "RuntimeClass"}
DRIVER_RULES = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
]


def conditions_text(conds: tuple[ir.FieldCondition, ...]) -> str:
    return ",".join(f"{c.path} {c.op} {json.dumps(c.value) if not isinstance(c.value, str) else c.value}" for c in conds)


def compile_manifests(p: ir.Pipeline, settings: KubernetesSettings, artifact_root: str,
                      stack_image: str | None = None) -> list[dict[str, Any]]:
    bases = job_bases(p.name, [s.name for s in p.steps])
    docs: list[dict[str, Any]] = []
    for step in p.steps:
        if step.kind == "importer":  # the driver settles it: nothing runs, so no Job
            continue
        if step.kind == "resource":
            docs.append(_resource_doc(p, step, settings))
        else:
            docs.append(_job(p, step, bases[step.name], settings, artifact_root, stack_image))
    if settings.driver == "in-cluster":
        docs += driver_documents(p, settings, artifact_root)
    return docs


def _labels(p: ir.Pipeline, settings: KubernetesSettings, **extra: str) -> dict[str, str]:
    return {**settings.labels, LABEL_PIPELINE: p.name, LABEL_RUN: "", **extra}


def _spec_env(p: ir.Pipeline, artifact_root: str) -> list[dict[str, Any]]:
    return [
        {"name": "STACKHOP_RUN_ID", "value": ""},
        {"name": "STACKHOP_RUN_SPEC", "value": f"{artifact_root}/{p.name}/$(STACKHOP_RUN_ID)/_stackhop/run.json"},
    ]


def _resources(step: ir.Step) -> dict[str, Any]:
    res = step.settings.resources
    if res is None:
        return {}
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    if res.cpu_millicores:
        requests["cpu"] = format_cpu(res.cpu_millicores)
    if res.cpu_limit_millicores:
        limits["cpu"] = format_cpu(res.cpu_limit_millicores)
    if res.memory_bytes:
        requests["memory"] = format_bytes(res.memory_bytes)
    if res.memory_limit_bytes:
        limits["memory"] = format_bytes(res.memory_limit_bytes)
    if res.disk_bytes:
        requests["ephemeral-storage"] = limits["ephemeral-storage"] = format_bytes(res.disk_bytes)
    if res.accelerator:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(res.accelerator.count)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _job(p: ir.Pipeline, step: ir.Step, base: str, settings: KubernetesSettings, artifact_root: str,
         stack_image: str | None) -> dict[str, Any]:
    st = step.settings
    image = st.image
    if not image:
        raise PipelineDefinitionError(
            f"pipeline {p.name!r}, step {step.name!r} has no image; set it on the step (.set_image), the pipeline "
            "(@pipeline(image=...)) or the stack (defaults.image)."
        )
    own_env = [{"name": k, "value": v} for k, v in sorted(st.env.items())]
    own_env += [
        {"name": s.env, "valueFrom": {"secretKeyRef": {"name": s.name, "key": s.key}}}
        for s in sorted(step.secrets, key=lambda s: s.env)
    ]
    env = _spec_env(p, artifact_root) + [{"name": "STACKHOP_STEP", "value": step.name}] + own_env
    annotations = {ANN_STEP: step.name}
    beside: dict[str, Any] = {}
    if step.kind == "container":
        main = MainCommand(step)
        container: dict[str, Any] = {
            "name": "main", "image": image, "command": main.command, "args": main.args,
            "env": own_env + [{"name": name, "value": ""} for name in main.fill],
        }
        if main.moves_data:
            beside = pod_parts(step, stackhop_image(p, step, settings, stack_image), env, settings.python,
                               settings.output_grace_seconds)
            container["volumeMounts"] = beside.pop("_mounts")
        for key in ("command", "args", "env"):  # an empty command runs the image's own entrypoint
            if not container[key]:
                del container[key]
        if main.fill:
            annotations[ANN_FILL] = json.dumps(main.fill, sort_keys=True, separators=(",", ":"))
    else:
        container = {
            "name": "main",
            "image": image,
            "command": [settings.python],
            "args": ["-m", "stackhop.entrypoint", "--spec", "$(STACKHOP_RUN_SPEC)", "--step", step.name],
            "env": env,
        }
    resources = _resources(step)
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", **beside, "containers": [container]}
    if settings.service_account:
        pod_spec["serviceAccountName"] = settings.service_account
    if settings.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in settings.image_pull_secrets]
    selector = dict(st.node_selector)
    tolerations = [t.model_dump(exclude_none=True) for t in (*settings.tolerations, *st.tolerations)]
    accel = st.resources.accelerator if st.resources else None
    if accel:
        selector[settings.accelerator_label] = settings.accelerator_values.get(accel.type, accel.type)
        if settings.gpu_toleration:
            tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    if selector:
        pod_spec["nodeSelector"] = dict(sorted(selector.items()))
    if tolerations:
        pod_spec["tolerations"] = tolerations
    labels = _labels(p, settings, **{LABEL_STEP: label_value(step.name)}, **st.labels)
    spec: dict[str, Any] = {
        "backoffLimit": st.retry.max_retries if st.retry else 0,
        "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }
    if st.timeout_seconds:
        spec["activeDeadlineSeconds"] = int(math.ceil(st.timeout_seconds))
    if settings.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = settings.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": base, "namespace": settings.namespace, "labels": dict(labels),
                     "annotations": annotations},
        "spec": spec,
    }


def stackhop_image(p: ir.Pipeline, step: ir.Step, settings: KubernetesSettings, stack_image: str | None) -> str:
    """The image that stages a container step's inputs and saves its outputs: it needs stackhop, so it
    is never the step's own. A Python step's image has stackhop and has been through the stack's
    registry mapping and digest pinning, so it comes before the stack's default reference."""
    image = settings.stackhop_image or next(
        (s.settings.image for s in p.steps if s.kind == "python" and s.settings.image),
        settings.driver_image or p.defaults.image or stack_image)
    if not image:
        raise PipelineDefinitionError(
            f"pipeline {p.name!r}, step {step.name!r} is a container step, and Kubernetes needs an image with "
            "stackhop in it to stage its inputs and save its outputs; set settings.stackhop_image (or defaults.image) "
            "on the stack."
        )
    return image


def manifest_parameters(p: ir.Pipeline, step: ir.Step) -> dict[tuple[str | int, ...], tuple[str, str]]:
    """Parametrised field -> (parameter, its type), for validating the compiled manifest."""
    if step.resource is None:
        return {}
    return {mp.path: (mp.parameter, p.parameter(mp.parameter).type)  # type: ignore[union-attr]
            for mp in step.resource.parameters}


def _stand_in(param: ir.Parameter) -> Any:
    """What a parametrised field shows in the compiled document: the default, else a value of the type."""
    return param.default if param.has_default else _ZERO[param.type]


def _resource_doc(p: ir.Pipeline, step: ir.Step, settings: KubernetesSettings) -> dict[str, Any]:
    assert step.resource is not None
    doc = ir.with_fields(step.resource.manifest, {
        mp.path: _stand_in(p.parameter(mp.parameter)) for mp in step.resource.parameters  # type: ignore[arg-type]
    })
    meta = doc.setdefault("metadata", {})
    if doc.get("kind") not in CLUSTER_SCOPED:
        meta.setdefault("namespace", settings.namespace)
    meta["labels"] = {**_labels(p, settings, **{LABEL_STEP: label_value(step.name)}), **(meta.get("labels") or {})}
    annotations = {ANN_STEP: step.name, ANN_ACTION: step.resource.action}
    if step.resource.success_conditions:
        annotations[ANN_SUCCESS] = conditions_text(step.resource.success_conditions)
    if step.resource.failure_conditions:
        annotations[ANN_FAILURE] = conditions_text(step.resource.failure_conditions)
    if step.resource.output_fields:
        annotations[ANN_OUTPUTS] = json.dumps(step.resource.output_fields, sort_keys=True)
    if step.resource.parameters:
        annotations[ANN_PARAMETERS] = json.dumps([[list(mp.path), mp.parameter] for mp in step.resource.parameters],
                                                 separators=(",", ":"))
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    return doc


def driver_documents(p: ir.Pipeline, settings: KubernetesSettings, artifact_root: str) -> list[dict[str, Any]]:
    """The least-privilege identity and the Job of the in-cluster driver."""
    name = dns_label(f"stackhop-driver-{p.name}")[:50].rstrip("-")
    labels = _labels(p, settings, **{LABEL_ROLE: "driver"})
    del labels[LABEL_RUN]
    meta = {"name": name, "namespace": settings.namespace, "labels": labels}
    image = settings.driver_image or p.defaults.image
    if not image:
        raise PipelineDefinitionError(
            f"pipeline {p.name!r}: the in-cluster driver needs an image with stackhop installed; "
            "set settings.driver_image on the stack."
        )
    driver_labels = {**labels, LABEL_RUN: ""}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": settings.namespace, "labels": driver_labels,
                     "annotations": {ANN_STEP: "_driver"}},
        "spec": {
            "backoffLimit": settings.driver_restarts,
            "template": {
                "metadata": {"labels": dict(driver_labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": name,
                    "containers": [{
                        "name": "driver",
                        "image": image,
                        "command": [settings.python],
                        "args": ["-m", "stackhop.entrypoint", "--spec", "$(STACKHOP_RUN_SPEC)", "--driver", "kubernetes"],
                        "env": _spec_env(p, artifact_root) + [
                            {"name": "STACKHOP_DRIVER_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        ],
                    }],
                },
            },
        },
    }
    if settings.ttl_seconds_after_finished is not None:
        job["spec"]["ttlSecondsAfterFinished"] = settings.ttl_seconds_after_finished
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": copy.deepcopy(meta)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": copy.deepcopy(meta),
         "rules": copy.deepcopy(DRIVER_RULES)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": copy.deepcopy(meta),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": settings.namespace}],
        },
        job,
    ]


# ------------------------------------------------------------------------------- binding


def dump(docs: list[dict[str, Any]]) -> str:
    """Multi-document YAML without anchors, keys sorted: the same bytes for the same objects."""
    import yaml

    class NoAliases(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump_all(docs, Dumper=NoAliases, sort_keys=True, default_flow_style=False)


def bind_job(
    template: dict[str, Any], run_id: str, index: tuple[int, ...] = (), owner: dict[str, Any] | None = None,
    fill: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`fill`: the run's values of the env vars a container step's command refers to (`ANN_FILL`)."""
    job = copy.deepcopy(template)
    job["metadata"]["name"] = bound_name(template["metadata"]["name"], run_id, index)
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        labels[LABEL_RUN] = run_id
    pod = job["spec"]["template"]["spec"]
    main = pod["containers"][0]
    fill = fill or {}
    for container in [*pod.get("initContainers", ()), main]:
        for env in container.get("env", ()):
            if env["name"] == "STACKHOP_RUN_ID":
                env["value"] = run_id
            elif container is main and env["name"] in fill:
                env["value"] = fill[env["name"]]
        args = container.get("args") or []
        if index and "stackhop.entrypoint" in args:  # beside --step: arguments after a `--wiring` belong to the wiring
            at = args.index("--step") + 2 if "--step" in args else len(args)
            container["args"] = [*args[:at], "--index", ",".join(str(i) for i in index), *args[at:]]
    if owner:
        job["metadata"]["ownerReferences"] = [{k: v for k, v in owner.items() if not k.startswith("_")}]
    return job


def bind_resource(template: dict[str, Any], run_id: str, owner: dict[str, Any] | None = None,
                  parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The object one run creates; `parameters` are the run's values, put where the manifest uses them."""
    fields = json.loads((template["metadata"].get("annotations") or {}).get(ANN_PARAMETERS) or "[]")
    doc = ir.with_fields(template, {tuple(path): (parameters or {})[name] for path, name in fields})
    doc["metadata"]["labels"][LABEL_RUN] = run_id
    if owner and doc.get("kind") not in CLUSTER_SCOPED and doc["metadata"].get("namespace") == owner.get("_namespace"):
        doc["metadata"]["ownerReferences"] = [{k: v for k, v in owner.items() if not k.startswith("_")}]
    return doc


def owner_reference(job: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"], "uid": job["metadata"]["uid"],
            "controller": False, "blockOwnerDeletion": True, "_namespace": job["metadata"].get("namespace")}


def step_of(doc: dict[str, Any]) -> str:
    return doc["metadata"].get("annotations", {}).get(ANN_STEP, "")
