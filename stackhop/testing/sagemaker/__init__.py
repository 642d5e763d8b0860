"""A SageMaker Pipelines stand-in for tests: moto's real server, plus what moto does not model.

`FakeSageMaker` serves moto's server app on 127.0.0.1 in the test process, so the code
under test talks to it with botocore's real serialization over real HTTP (boto3 clients from
`aws.client(...)`, s3fs, or a subprocess given `aws.env()`), and tests script the service's side
through moto's in-process backends. Requires moto's server (`moto[server]`, which
brings `boto3`), from stackhop's `testing` extra.

What moto serves as is: S3 (buckets, objects, multipart), CloudWatch Logs (groups, streams,
GetLogEvents, FilterLogEvents), and the rest of SageMaker's API as moto implements it.

What the stand-in changes or adds (all in `operations.py`, installed on moto's SageMaker and
Logs response classes on enter and removed on exit; the 501 answer is in `fake.py`):

* CreatePipeline / UpdatePipeline check the definition as the service does and answer
  ValidationException for: text that is not a JSON object or has no Steps list; an inline
  definition over 1,048,576 characters; a step name outside `^[A-Za-z0-9\\-_]{1,64}$`; a
  duplicate step name (condition branches included); a DependsOn naming an unknown step; a
  `{"Get": "Steps.X..."}` where X is not a step; a dependency cycle. A definition given by
  PipelineDefinitionS3Location is read from moto's S3 (an unreadable location is a
  ValidationException too) and stored as text. CreatePipeline with a ClientRequestToken already
  used for that pipeline name returns the same pipeline.
* Every pipeline operation checks its request against botocore's shapes the way the service
  does and botocore's client does not: maximum lengths, patterns (e.g. PipelineName,
  PipelineExecutionDisplayName, parameter names), enums and ranges (MaxResults <= 100).
* An unknown pipeline or execution is ResourceNotFound (moto: ValidationException), and a
  pipeline may be named by name or ARN.
* StartPipelineExecution is idempotent by ClientRequestToken (same token, same pipeline: same
  execution ARN), rejects PipelineParameters whose names the definition does not declare (or
  that repeat), and starts the execution in "Executing". Nothing moves it on by itself.
* Scripted by the test, never by a clock:
  - `set_execution(arn, status, failure_reason)` sets the execution's status
    (PipelineExecutionStatus enum) and the FailureReason that DescribePipelineExecution and
    ListPipelineExecutions report;
  - `set_steps(arn, steps)` sets the steps ListPipelineExecutionSteps reports, each checked
    against botocore's PipelineExecutionStep shape and the execution's definition;
  - `put_log_events(group, stream, lines)` seeds CloudWatch Logs.
* RetryPipelineExecution (moto lacks it): a Failed or Stopped execution is Executing again
  (idempotent by ClientRequestToken); any other status is a ValidationException. Which steps the
  retry ran is scripted with `set_steps`, as for any execution.
* StartPipelineExecution with SelectiveExecutionConfig checks it as the service documents: the
  source is a Succeeded, Failed or Stopped execution of the same pipeline; selected steps are
  steps of the definition (at most 50, botocore's shape); every step on a path between two
  selected steps is selected; and each unselected step a selected one reads succeeded in the
  source, where the test scripted the source's steps. DescribePipelineExecution returns the config.
* ListPipelineExecutionSteps (moto lacks it): the scripted steps, SortOrder Descending (the
  default: latest started first) or Ascending, pages of MaxResults (default 10) with NextToken.
* ListPipelineExecutions: CreatedAfter/CreatedBefore, SortBy, SortOrder and pagination (default
  page 10), without moto's literal "None" failure reasons.
* StopPipelineExecution (moto lacks it): an Executing execution and its Starting/Executing steps
  become "Stopping"; DescribePipelineExecution reports "Stopping" `stop_after_polls` times
  (default 1), then the execution and its stopping steps are "Stopped" (steps get an EndTime).
  Stopping a Stopping/Stopped execution is a no-op; stopping a finished one is a
  ValidationException (the service does not document its error for that case).
* CloudWatch Logs FilterLogEvents honours logStreamNamePrefix (moto searches every stream of the
  group), which is how a SageMaker job's streams (`<job-name>/...`) are read.
* Operations moto does not implement answer HTTP 501 `NotImplemented` (moto: 500, which
  botocore retries), so they fail at once under any retry configuration.

Not modelled, compared with real SageMaker: nothing runs (no processing or training jobs are
created for steps, no step starts or finishes unless scripted, conditions are not evaluated,
Get/Join/JsonGet are not resolved; `stackhop run --emulate` is what executes a compiled
definition); the definition is not checked against the published schema or step-type argument
shapes, nor are `Get: Parameters.X` references or parameter types checked; IAM (RoleArn is stored,
never assumed); ParallelismConfiguration; what a retried or selective execution runs (scripted, like every step);
callback/lambda steps, pipeline versions, experiments and lineage; service quotas and throttling.
"""

from .fake import FakeSageMaker

__all__ = ["FakeSageMaker"]
