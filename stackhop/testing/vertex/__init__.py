"""A Vertex AI Pipelines stand-in for tests: aiplatform v1 PipelineJobs over real loopback HTTP.

`FakeVertex` serves the v1 REST API of PipelineJobs on 127.0.0.1 so the real
`google.cloud.aiplatform` client (`api_transport="rest"`, `api_endpoint=fake.endpoint`,
`AnonymousCredentials()`) runs unmodified against it; `fake.patch_client(monkeypatch)` stubs the
client's Cloud Storage bucket creation and shortens `PipelineJob.wait`'s 5 s poll. Requires
`aiohttp`, `google-cloud-aiplatform` (its v1 protos define the wire format) and
`kfp-pipeline-spec` (the PipelineSpec proto), all in stackhop's `testing` extra.

What is modelled:

* Routes: create (`POST .../pipelineJobs?pipelineJobId=`), get, list (filter, orderBy,
  pageSize/pageToken, readMask), cancel (`POST .../pipelineJobs/{id}:cancel`), delete (answers
  a done long-running Operation, also served at `GET .../operations/{id}`). The project may be
  given by id or number (another project: 403 PERMISSION_DENIED); another location is 400.
  Other v1 routes answer 501 UNIMPLEMENTED.
* JSON as the REST mapping has it: camelCase, int64 as strings, defaults omitted, enums by name,
  or by number when the request says `$alt=json;enum-encoding=int` (as aiplatform's client does).
  Errors are google.rpc.Status bodies `{"error": {"code", "message", "status"}}`.
* Create is checked as strictly as the service: the body parses into the v1 `PipelineJob`
  message (unknown fields refused; output-only fields ignored); pipelineJobId
  `[a-z0-9][a-z0-9-]{0,127}`; displayName <= 128 characters; pipelineSpec parses strictly as a
  kfp `PipelineSpec` (and deploymentSpec as a `PipelineDeploymentConfig`), schemaVersion 2.0.0
  or 2.1.0, pipelineInfo.name `[a-z0-9][a-z0-9-]{0,127}`, a root DAG, every componentRef,
  executorLabel, dependentTasks, producerTask and DAG-output producerSubtask resolves (within the
  same DAG), no dependency cycles, and no platform spec (a PipelineSpec+PlatformSpec bundle or a
  PlatformSpec document); runtimeConfig.gcsOutputDirectory (or the spec's defaultPipelineRoot)
  is a gs:// URI; parameterValues (and legacy `parameters`) are declared root inputs of the
  declared type, required inputs are given, inputArtifacts are declared; labels follow the
  Google Cloud rules (<= 64; keys 1-63 chars starting with a lowercase letter; keys and values
  lowercase letters, digits, '_' and '-'); serviceAccount is an email address; network is
  `projects/{number}/global/networks/{name}`. All problems are named in one 400
  INVALID_ARGUMENT; an existing id is 409 ALREADY_EXISTS; an unknown job is 404 NOT_FOUND.
* A created job is `projects/{project number}/locations/{location}/pipelineJobs/{id}`, state
  PIPELINE_STATE_PENDING (the service answers PENDING, sometimes RUNNING; PENDING is chosen so
  tests script the start), with createTime/updateTime and every request field kept.
* Nothing moves by itself except a cancel: tests script job states (`set_state`: startTime on
  RUNNING, endTime on SUCCEEDED/FAILED/CANCELLED, `error` code 9 on FAILED, code 1 on CANCELLED)
  and task details (`set_task`, refusing task names and output artifacts the spec does not
  declare). A cancel of a QUEUED/PENDING/RUNNING/PAUSED job makes it CANCELLING (running tasks
  CANCELLING), reported by `cancel_after_polls` GETs, then CANCELLED (unfinished tasks
  CANCELLED); cancelling a CANCELLING job is a no-op; a finished job is 400 FAILED_PRECONDITION.
  Delete is allowed for finished jobs only (400 FAILED_PRECONDITION otherwise) and is immediate.

Not modelled, compared with real Vertex AI Pipelines: nothing runs (no scheduling, no task
starts or finishes, conditions and loops are not evaluated, no caching, no output parameter
values, no MLMD contexts, executions, executorDetail, task inputs or taskUniqueName); IAM and
authentication (credentials are not checked; serviceAccount, network, encryptionSpec,
reservedIpRanges and pscInterfaceConfig are checked for form at most, never for existence or
permission); Cloud Storage (the pipeline root is never created or read); templateUri is stored
but never fetched (pipelineSpec stays required); preflight validations; the service's reserved
label `vertex-ai-pipelines-run-billing-id`; spec rules beyond the ones above (task inputs
against component interfaces, condition expressions, images, machine types, accelerators,
quotas); the "being deleted" period after a delete; batch cancel/delete, schedules, v1beta1,
gRPC; throttling, retries and latency; the service's exact error wording and error details.
"""

from .fake import FakeVertex

__all__ = ["FakeVertex"]
