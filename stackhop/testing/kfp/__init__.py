"""A self-hosted Kubeflow Pipelines API server stand-in for tests: the v2beta1 REST API over real HTTP.

`FakeKFP` serves, on 127.0.0.1 from a background thread, the calls the real `kfp.Client` (kfp 2.x,
through `kfp_server_api`) makes to submit and follow runs, and answers them as ml-pipeline 2.17
does in single-user mode, so code under test uses the client unchanged. Requires `aiohttp`,
`protobuf` and `kfp-pipeline-spec` (plus `kfp` for the client); kfp-kubernetes is optional.

Served (any other call under /apis/ answers 501 Unimplemented naming it, anything else 404):

* `GET /apis/v2beta1/healthz`: single-user, pipeline_store "database". `kfp.Client()` calls it on
  construction unless a local kfp context file sets a namespace.
* `GET|POST /apis/v2beta1/experiments`, `GET /apis/v2beta1/experiments/{id}`: a "Default"
  experiment exists from the start; names are unique regardless of case (else 409 AlreadyExists).
* `POST /apis/v2beta1/runs`, `GET /apis/v2beta1/runs/{id}`, `GET /apis/v2beta1/runs`,
  `POST /apis/v2beta1/runs/{id}:terminate`, and `POST /apis/v2beta1/runs/{id}:retry`: a FAILED or
  CANCELED run is RUNNING again with its failed and cancelled tasks PENDING (the test scripts what
  the retry then runs); a run in any other state is refused with 400, as the apiserver refuses a
  workflow that is not Failed.

Create-run is refused, before anything is stored, with HTTP 400 (InvalidArgument) and one sentence
(the server's wording where it has one) unless:

* the body has only Run fields (proto or JSON names) and a display_name;
* `pipeline_spec` is a PipelineSpec, or `{"pipeline_spec": ..., "platform_spec": ...}`, which is
  how kfp.Client sends a package whose YAML has a second document (the kfp-kubernetes platform
  spec); it parses strictly (`json_format.ParseDict`, unknown fields refused) into
  `PipelineSpec`; schemaVersion is 2.1.0 (the only version any 2.x server accepts: 2.0.0 is
  refused); pipelineInfo.name is set (and passes the server's unanchored name check); root is
  set; every componentRef names a component; every executorLabel names a deploymentSpec
  executor that is a container or an importer; dependentTasks and every producer (of
  taskOutputParameter, taskOutputArtifact, taskFinalStatus inputs and of DAG outputs) name tasks
  of the same DAG; no DAG's dependencies form a cycle;
* a platform spec parses strictly into `PlatformSpec`, and each kubernetes executor config into
  `kfp_kubernetes.KubernetesExecutorConfig` (kfp-kubernetes's class when installed, otherwise the
  same message rebuilt in `kubernetes_config`) and configures an executor of the pipeline spec;
* runtime_config.parameters gives every root input that is neither optional nor defaulted, each
  with a JSON value of its declared type (a number for NUMBER_INTEGER too, as the server checks),
  and nothing root does not declare;
* the experiment exists (else 404 NotFound); without one the run goes to "Default".

A stored run is the JSON the API returns (proto names, unpopulated fields left out): run_id (a
uuid4), display_name, experiment_id, storage_state AVAILABLE, the pipeline_spec as sent,
runtime_config, service_account ("pipeline-runner" unless given), created_at = scheduled_at
(RFC 3339, whole seconds), finished_at at the epoch until a final state, state PENDING and a
state_history. Nothing moves by itself except a terminated run (PENDING, RUNNING or PAUSED; else
400): it reports CANCELING for `terminate_after_polls` reads of GET /runs/{id}, then CANCELED.
Tests script the rest with `set_state` and `set_task`.

Task outputs: a task detail's `outputs` maps an output name to `{"artifact_ids": [...]}`, ids of
ML Metadata artifacts; the API has no field for their URIs, which a real deployment keeps in MLMD
(gRPC). `set_task(outputs={name: [uri, ...]})` therefore gives each URI an artifact id, lists the
ids in the task detail, and keeps the URIs in the side table `FakeKFP.artifacts` (id -> uri, run,
task, output name), also readable as `FakeKFP.output_uris(run_id, task)`.

Listing: `filter` is a JSON Filter (operation by number or name; EQUALS, NOT_EQUALS, the
comparisons, IN, IS_SUBSTRING) on the server's keys, URL-unescaped once more as the server does
(so `+` in a filter value reads as a space); strings compare ignoring case, as MySQL's default
collation does; `sort_by`, `page_size` (default 20, at most 200) and `page_token` work as on
the server. Errors are `google.rpc.Status` bodies, `{"code", "message", "details": [Status]}`, as
grpc-gateway v2 sends them (KFP 2.14 and later; 2.5 and earlier used v1, whose bodies also had
an "error" key); kfp_server_api raises them as `ApiException` with the HTTP status.

Not modelled, compared with a real KFP deployment:

* Execution: no Argo Workflow, pods, drivers, caching, conditions or ML Metadata; runs and tasks
  move only when scripted; task details are what the test sets, one per task name (a real server
  lists Argo nodes, drivers and DAG nodes like "root" included, and, building them from Argo nodes
  in 2.17, leaves their outputs empty); execution_id, pod_name, child_tasks, parent_task_id,
  executor_detail and task inputs are never set.
* The backend compiler beyond the checks above: placeholders, iterators, importers, retry
  policies, resources and images are not checked, nor output keys against the producer's
  outputDefinitions, nor kubernetes config values (only their shape).
* Status codes where the server differs: ml-pipeline 2.17 wraps a bad pipeline spec in CreateRun
  as 500 Internal ("Failed to create a run due to error fetching manifest"), and backend-compiler
  failures and an empty experiment name come back as 500 too; the stand-in answers 400 for every
  refused create-run. Messages carry no wrapping chain ("Failed to create a new run: ...").
* Stricter than the server, which silently drops them: a pipeline_spec wrapper with other keys,
  a platform spec that does not parse, kubernetes configs for executors the pipeline lacks.
  Dangling dependencies and cycles are refused at submission (Argo would fail the run later).
* run.error: a real 2.17 server leaves it unset for failed runs; the stand-in reports
  `set_state(..., error_message=...)` there (code 2) and in the state_history entry.
* Multi-user mode (namespaces, profiles, authorization; namespace parameters are ignored) and
  authentication; pipelines and pipeline versions (runs from pipeline_version_reference are
  501); recurring runs; archive, delete and retry of runs and experiments; logs, artifact
  reading, visualizations; the v1beta1 API.
* Filtering or sorting on status, state_history or runtime_details (501); MySQL's trailing-space
  and accent folding; page tokens are offsets, not stable under concurrent inserts.
* Terminate advances on GET of the run only, not on list calls. kfp.Client's
  wait_for_run_completion stops only at succeeded, failed, skipped or error, so it times out on a
  canceled run: that is the client's behaviour, faithfully met.
"""

from .fake import FakeKFP

__all__ = ["FakeKFP"]
