"""The message a kfp-kubernetes executor config must parse into: `kfp_kubernetes.KubernetesExecutorConfig`.

The real API server's backend compiler unmarshals each executor's Kubernetes config with
protojson, which refuses unknown fields and wrong value types. The Python classes ship in
kfp-kubernetes (`kfp.kubernetes.kubernetes_executor_config_pb2`), which is optional: when it is
importable it is used as is. Otherwise the message is rebuilt here from a table of its fields
(written from `kubernetes_platform/proto/kubernetes_executor_config.proto` as of KFP 2.17) in a
private descriptor pool, so `json_format.ParseDict` gives the same verdicts and the same error
wording either way and nothing clashes with kfp-kubernetes if it is imported later.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["executor_config_class"]

_PACKAGE = "kfp_kubernetes"
_PARAM = ".ml_pipelines.TaskInputsSpec.InputParameterSpec"
_TASK_OUTPUT_PARAM = ".ml_pipelines.TaskInputsSpec.InputParameterSpec.TaskOutputParameterSpec"

# message -> [(field, number, type, oneof)]; type is a scalar name, "map" (map<string, string>),
# a message of this table, or an absolute ".package.Type"; a leading "*" means repeated.
# proto3 `optional` only changes presence tracking, not what JSON parses, so it is left out.
_MESSAGES: dict[str, list[tuple[str, int, str, str | None]]] = {
    "KubernetesExecutorConfig": [
        ("secret_as_volume", 1, "*SecretAsVolume", None),
        ("secret_as_env", 2, "*SecretAsEnv", None),
        ("pvc_mount", 3, "*PvcMount", None),
        ("node_selector", 4, "NodeSelector", None),
        ("pod_metadata", 5, "PodMetadata", None),
        ("image_pull_secret", 6, "*ImagePullSecret", None),
        ("image_pull_policy", 7, "string", None),
        ("config_map_as_volume", 8, "*ConfigMapAsVolume", None),
        ("config_map_as_env", 9, "*ConfigMapAsEnv", None),
        ("active_deadline_seconds", 10, "int64", None),
        ("field_path_as_env", 11, "*FieldPathAsEnv", None),
        ("tolerations", 12, "*Toleration", None),
        ("generic_ephemeral_volume", 13, "*GenericEphemeralVolume", None),
        ("node_affinity", 14, "*NodeAffinityTerm", None),
        ("pod_affinity", 15, "*PodAffinityTerm", None),
        ("enabled_shared_memory", 16, "EnabledSharedMemory", None),
        ("empty_dir_mounts", 17, "*EmptyDirMount", None),
        ("security_context", 18, "SecurityContext", None),
    ],
    "EnabledSharedMemory": [("volume_name", 1, "string", None), ("size", 2, "string", None)],
    "SecretAsVolume": [
        ("secret_name", 1, "string", None),
        ("mount_path", 2, "string", None),
        ("optional", 3, "bool", None),
        ("secret_name_parameter", 4, _PARAM, None),
    ],
    "SecretAsEnv": [
        ("secret_name", 1, "string", None),
        ("key_to_env", 2, "*SecretAsEnv.SecretKeyToEnvMap", None),
        ("optional", 3, "bool", None),
        ("secret_name_parameter", 4, _PARAM, None),
    ],
    "SecretAsEnv.SecretKeyToEnvMap": [("secret_key", 1, "string", None), ("env_var", 2, "string", None)],
    "PvcMount": [
        ("task_output_parameter", 1, _TASK_OUTPUT_PARAM, "pvc_reference"),
        ("constant", 2, "string", "pvc_reference"),
        ("component_input_parameter", 3, "string", "pvc_reference"),
        ("mount_path", 4, "string", None),
        ("pvc_name_parameter", 5, _PARAM, None),
        ("sub_path", 6, "string", None),
    ],
    "NodeSelector": [("labels", 1, "map", None), ("node_selector_json", 2, _PARAM, None)],
    "PodMetadata": [("labels", 1, "map", None), ("annotations", 2, "map", None)],
    "ConfigMapAsVolume": [
        ("config_map_name", 1, "string", None),
        ("mount_path", 2, "string", None),
        ("optional", 3, "bool", None),
        ("config_map_name_parameter", 4, _PARAM, None),
    ],
    "ConfigMapAsEnv": [
        ("config_map_name", 1, "string", None),
        ("key_to_env", 2, "*ConfigMapAsEnv.ConfigMapKeyToEnvMap", None),
        ("config_map_name_parameter", 3, _PARAM, None),
        ("optional", 4, "bool", None),
    ],
    "ConfigMapAsEnv.ConfigMapKeyToEnvMap": [("config_map_key", 1, "string", None), ("env_var", 2, "string", None)],
    "GenericEphemeralVolume": [
        ("volume_name", 1, "string", None),
        ("mount_path", 2, "string", None),
        ("access_modes", 3, "*string", None),
        ("size", 4, "string", None),
        ("default_storage_class", 5, "bool", None),
        ("storage_class_name", 6, "string", None),
        ("metadata", 7, "PodMetadata", None),
    ],
    "ImagePullSecret": [("secret_name", 1, "string", None), ("secret_name_parameter", 2, _PARAM, None)],
    "FieldPathAsEnv": [("name", 1, "string", None), ("field_path", 2, "string", None)],
    "Toleration": [
        ("key", 1, "string", None),
        ("operator", 2, "string", None),
        ("value", 3, "string", None),
        ("effect", 4, "string", None),
        ("toleration_seconds", 5, "int64", None),
        ("toleration_json", 6, _PARAM, None),
    ],
    "SelectorRequirement": [
        ("key", 1, "string", None),
        ("operator", 2, "string", None),
        ("values", 3, "*string", None),
    ],
    "NodeAffinityTerm": [
        ("match_expressions", 1, "*SelectorRequirement", None),
        ("match_fields", 2, "*SelectorRequirement", None),
        ("weight", 3, "int32", None),
        ("node_affinity_json", 4, _PARAM, None),
    ],
    "PodAffinityTerm": [
        ("match_pod_expressions", 1, "*SelectorRequirement", None),
        ("match_pod_labels", 2, "map", None),
        ("topology_key", 3, "string", None),
        ("namespaces", 4, "*string", None),
        ("match_namespace_expressions", 5, "*SelectorRequirement", None),
        ("match_namespace_labels", 6, "map", None),
        ("weight", 7, "int32", None),
        ("anti", 8, "bool", None),
    ],
    "SecurityContext": [
        ("run_as_user", 1, "int64", None),
        ("run_as_group", 2, "int64", None),
        ("run_as_non_root", 6, "bool", None),
    ],
    "EmptyDirMount": [
        ("volume_name", 1, "string", None),
        ("mount_path", 2, "string", None),
        ("medium", 3, "string", None),
        ("size_limit", 4, "string", None),
    ],
}


def executor_config_class() -> Any:
    """The `KubernetesExecutorConfig` message class (kfp-kubernetes's if installed)."""
    return _installed_class() or _rebuilt_class()


@functools.cache
def _installed_class() -> Any:
    try:
        from kfp.kubernetes import kubernetes_executor_config_pb2  # type: ignore[import-not-found]
    except ImportError:
        return None
    return kubernetes_executor_config_pb2.KubernetesExecutorConfig


@functools.cache
def _rebuilt_class() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from kfp.pipeline_spec import pipeline_spec_pb2

    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: Any) -> None:
        if file.name in added:
            return
        for dependency in file.dependencies:
            add(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        pool.Add(proto)
        added.add(file.name)

    add(pipeline_spec_pb2.DESCRIPTOR)
    proto = descriptor_pb2.FileDescriptorProto(
        name="kubernetes_executor_config.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=[pipeline_spec_pb2.DESCRIPTOR.name],
    )
    messages: dict[str, Any] = {}
    for name in _MESSAGES:  # parents come before their nested messages in the table
        parent, _, short = name.rpartition(".")
        container = messages[parent].nested_type if parent else proto.message_type
        messages[name] = container.add(name=short)
    for name, fields in _MESSAGES.items():
        _add_fields(messages[name], name, fields, descriptor_pb2.FieldDescriptorProto)
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.KubernetesExecutorConfig"))


_SCALARS = {"string": 9, "bool": 8, "int64": 3, "int32": 5}


def _add_fields(message: Any, name: str, fields: list[tuple[str, int, str, str | None]], field_proto: Any) -> None:
    oneofs: dict[str, int] = {}
    for field_name, number, kind, oneof in fields:
        repeated = kind.startswith("*")
        kind = kind.lstrip("*")
        field = message.field.add(name=field_name, number=number)
        field.label = field_proto.LABEL_REPEATED if repeated else field_proto.LABEL_OPTIONAL
        if kind in _SCALARS:
            field.type = _SCALARS[kind]
        elif kind == "map":
            entry_name = "".join(part.title() for part in field_name.split("_")) + "Entry"
            entry = message.nested_type.add(name=entry_name)
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=_SCALARS["string"], label=field_proto.LABEL_OPTIONAL)
            entry.field.add(name="value", number=2, type=_SCALARS["string"], label=field_proto.LABEL_OPTIONAL)
            field.label = field_proto.LABEL_REPEATED
            field.type = field_proto.TYPE_MESSAGE
            field.type_name = f".{_PACKAGE}.{name}.{entry_name}"
        else:
            field.type = field_proto.TYPE_MESSAGE
            field.type_name = kind if kind.startswith(".") else f".{_PACKAGE}.{kind}"
        if oneof is not None:
            if oneof not in oneofs:
                oneofs[oneof] = len(message.oneof_decl)
                message.oneof_decl.add(name=oneof)
            field.oneof_index = oneofs[oneof]
