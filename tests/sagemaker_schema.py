"""The published SageMaker pipeline-definition schema, with the patches reality requires.

The schema in ../shared/reference is stale: the SageMaker SDK's own output does not validate
against it. It is read from there at test time (never copied into this repository) and
patched in memory. Each patch says why; the SDK's reference output must validate against the
result, which keeps the patches honest.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"

ARG_VALUE = {"anyOf": [
    {"type": ["string", "number", "boolean"]},
    {"$ref": "#/definitions/GetFunction"},
    {"$ref": "#/definitions/JoinFunction"},
    {"$ref": "#/definitions/JsonGetFunction"},
]}

PATCHES: list[tuple[str, str]] = [
    ("JoinFunction", "the published definition is not a schema (its Std:Join has no `properties`); the SDK emits "
                     "{'Std:Join': {'On': str, 'Values': [...]}} with strings, numbers, Get and nested expressions"),
    ("JsonGetFunction", "Std:JsonGet (reading a PropertyFile) is missing entirely; the SDK emits "
                        "{'Std:JsonGet': {'PropertyFile': {'Get': ...}, 'Path': str}}"),
    ("String/Integer/Float/BooleanArgumentValue", "arguments may be Std:Join and Std:JsonGet expressions, not only "
                                                  "literals and Get (the SDK puts Std:Join in S3Uri and arguments)"),
    ("ProcessingStep.PropertyFiles", "Processing steps carry PropertyFiles (the SDK emits them), absent from the schema"),
    ("InCondition", "the SDK's ConditionIn emits QueryValue/Values, not Value/In"),
    ("NotCondition", "ConditionNot ({'Type': 'Not', 'Expression': condition}) is missing"),
    ("ConditionStep conditions / OrCondition", "accept Not and nested Or as the SDK builds them"),
    ("top-level PipelineExperimentConfig/MlflowConfig", "the SDK emits them (possibly null); the schema forbids them"),
    ("TrainingStep OutputDataConfig.CompressionType", "a CreateTrainingJob field newer than the schema; the SDK emits it"),
    ("TrainingStep Environment, AlgorithmSpecification.ContainerEntrypoint/ContainerArguments",
     "CreateTrainingJob fields newer than the schema (botocore's request shape has them; a test checks)"),
]


def load_patched() -> dict[str, Any] | None:
    path = REFERENCE / "sagemaker-pipeline-definition.schema.json"
    if not path.exists():
        return None
    schema = json.loads(path.read_text())
    d = schema["definitions"]
    d["JoinFunction"] = {"type": "object", "additionalProperties": False, "required": ["Std:Join"], "properties": {
        "Std:Join": {"type": "object", "additionalProperties": False, "required": ["Values"], "properties": {
            "On": {"type": "string"}, "Values": {"type": "array", "items": ARG_VALUE}}}}}
    d["JsonGetFunction"] = {"type": "object", "additionalProperties": False, "required": ["Std:JsonGet"], "properties": {
        "Std:JsonGet": {"type": "object", "additionalProperties": False, "required": ["PropertyFile", "Path"],
                        "properties": {"PropertyFile": {"$ref": "#/definitions/GetFunction"}, "Path": {"type": "string"}}}}}
    for name in ("StringArgumentValue", "IntegerArgumentValue", "FloatArgumentValue", "BooleanArgumentValue"):
        d[name] = copy.deepcopy(ARG_VALUE)
    d["ProcessingStep"]["properties"]["PropertyFiles"] = {"type": "array", "items": {
        "type": "object", "additionalProperties": False, "required": ["PropertyFileName", "OutputName", "FilePath"],
        "properties": {"PropertyFileName": {"type": "string"}, "OutputName": {"type": "string"},
                       "FilePath": {"type": "string"}}}}
    d["InCondition"] = {"type": "object", "additionalProperties": False, "required": ["Type", "QueryValue", "Values"],
                        "properties": {"Type": {"enum": ["In"]}, "QueryValue": ARG_VALUE,
                                       "Values": {"type": "array", "items": ARG_VALUE}}}
    condition = {"anyOf": [{"$ref": "#/definitions/BinaryCondition"}, {"$ref": "#/definitions/InCondition"},
                           {"$ref": "#/definitions/OrCondition"}, {"$ref": "#/definitions/NotCondition"}]}
    d["NotCondition"] = {"type": "object", "additionalProperties": False, "required": ["Type", "Expression"],
                         "properties": {"Type": {"enum": ["Not"]}, "Expression": condition}}
    d["OrCondition"]["properties"]["Conditions"] = {"type": "array", "items": condition}
    d["ConditionStep"]["properties"]["Arguments"]["properties"]["Conditions"] = {"type": "array", "items": condition}
    d["TrainingStep"]["properties"]["Arguments"]["properties"]["OutputDataConfig"]["properties"]["CompressionType"] = ARG_VALUE
    training_args = d["TrainingStep"]["properties"]["Arguments"]["properties"]
    training_args["Environment"] = {"type": "object", "patternProperties": {".*": ARG_VALUE}}
    algorithm = training_args["AlgorithmSpecification"]["properties"]
    algorithm["ContainerEntrypoint"] = algorithm["ContainerArguments"] = {"type": "array", "items": ARG_VALUE}
    schema["properties"]["PipelineExperimentConfig"] = {"type": ["object", "null"]}
    schema["properties"]["MlflowConfig"] = {"type": ["object", "null"]}
    return schema


def reference_sdk_definition() -> dict[str, Any] | None:
    path = REFERENCE / "sagemaker-sdk-v3-three-step.json"
    return json.loads(path.read_text()) if path.exists() else None
