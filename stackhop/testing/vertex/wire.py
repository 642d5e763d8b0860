"""The JSON mapping of aiplatform v1 messages, through the published protos (google-cloud-aiplatform).

Parsing a request body into the real `PipelineJob` message is how the service finds unknown
fields and wrongly typed values; rendering through it gives the REST mapping's shape (camelCase,
int64 as strings, default values omitted, enums as names or, when the client asks with
`$alt=json;enum-encoding=int`, as numbers).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from .errors import invalid

# Fields a client may send but the service sets itself; like the service, a create ignores them.
OUTPUT_ONLY = frozenset(
    {"name", "createTime", "startTime", "endTime", "updateTime", "state", "jobDetail", "error",
     "templateMetadata", "scheduleName"}
)


def _pipeline_job() -> Message:
    from google.cloud.aiplatform_v1.types import pipeline_job

    return pipeline_job.PipelineJob.pb()()


def parse_pipeline_job(body: dict[str, Any]) -> dict[str, Any]:
    """The canonical JSON of a PipelineJob request body; an unknown or mistyped field is a 400."""
    message = _pipeline_job()
    try:
        json_format.ParseDict(body, message)
    except json_format.ParseError as exc:
        raise invalid(f"Invalid JSON payload received: {parse_error_text(exc)}.") from None
    return json_format.MessageToDict(message)


def render(job: dict[str, Any], *, enums_as_ints: bool) -> dict[str, Any]:
    """A stored job as the REST API returns it, in the enum encoding the request asked for."""
    message = _pipeline_job()
    json_format.ParseDict(job, message)
    return json_format.MessageToDict(message, use_integers_for_enums=enums_as_ints)


def normalized(job: dict[str, Any]) -> dict[str, Any]:
    """A stored job re-rendered canonically; raises if the stand-in built an invalid message."""
    return render(copy.deepcopy(job), enums_as_ints=False)


def now() -> str:
    """The current time in the RFC 3339 form the JSON mapping uses for Timestamp."""
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp.ToJsonString()


def parse_time(text: str) -> Timestamp:
    """An RFC 3339 timestamp; ValueError when it is not one."""
    stamp = Timestamp()
    stamp.FromJsonString(text)
    return stamp


def parse_error_text(exc: Exception) -> str:
    """protobuf's ParseError without the nesting preamble and the list of every field name."""
    text = str(exc).split("\n", 1)[0]
    text = re.sub(r"^(Failed to parse \S+ field: )+", "", text)
    return text.rstrip(".")
