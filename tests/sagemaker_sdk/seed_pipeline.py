"""Build the seed training pipeline with the SageMaker Python SDK v3 and print its definition.

Run with a Python that has `sagemaker==3.27.0` (a separate venv; the SDK is ~1 GB and is never a
stackhop dependency). Offline by construction: fake credentials, local empty SDK config, a
pre-set default bucket, full ARNs and explicit s3:// URIs, a plain Processor (no code upload),
and an audit hook that refuses every socket, so a hidden AWS call fails at once.
"""

import json
import os
import sys
import tempfile

os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
})
_config = os.path.join(tempfile.mkdtemp(), "sagemaker_config.yaml")
with open(_config, "w") as f:
    f.write("{}\n")  # every Session the SDK builds internally reads this; an override must exist locally
os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = os.environ["SAGEMAKER_ADMIN_CONFIG_OVERRIDE"] = _config


def _no_network(event, args):
    if event in ("socket.connect", "socket.getaddrinfo"):
        raise OSError(f"the SDK tried to reach the network ({event}); this script must stay offline")


sys.addaudithook(_no_network)

import boto3  # noqa: E402
from sagemaker.core.processing import Processor  # noqa: E402
from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output  # noqa: E402
from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo  # noqa: E402
from sagemaker.core.workflow.functions import JsonGet  # noqa: E402
from sagemaker.core.workflow.parameters import ParameterFloat  # noqa: E402
from sagemaker.core.workflow.pipeline_context import PipelineSession  # noqa: E402
from sagemaker.core.workflow.properties import PropertyFile  # noqa: E402
from sagemaker.mlops.workflow.condition_step import ConditionStep  # noqa: E402
from sagemaker.mlops.workflow.pipeline import Pipeline  # noqa: E402
from sagemaker.mlops.workflow.steps import ProcessingStep  # noqa: E402

BUCKET = "seed-bucket"
session = PipelineSession(boto_session=boto3.Session(region_name="us-east-1"), default_bucket=BUCKET,
                          sagemaker_config=None)
session._default_bucket = BUCKET  # default_bucket() would otherwise ask S3 whether it exists


def processor(script):
    return Processor(role="arn:aws:iam::123456789012:role/SageMakerRole",
                     image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0",
                     instance_count=1, instance_type="ml.m5.large",
                     entrypoint=["python3", f"/opt/program/{script}.py"], sagemaker_session=session)


def read(name, uri, path):
    return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
        s3_uri=uri, local_path=path, s3_data_type="S3Prefix", s3_input_mode="File",
        s3_data_distribution_type="FullyReplicated"))


def write(name, path):
    return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
        s3_uri=f"s3://{BUCKET}/seed/{name}", local_path=path, s3_upload_mode="EndOfJob"))


def output_uri(step, name):
    return step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri


min_accuracy = ParameterFloat(name="min_accuracy", default_value=0.85)
load_data = ProcessingStep(name="load_data", step_args=processor("load_data").run(
    outputs=[write("data", "/opt/ml/processing/data")]))
train_model = ProcessingStep(name="train_model", step_args=processor("train_model").run(
    inputs=[read("dataset", output_uri(load_data, "data"), "/opt/ml/processing/data")],
    outputs=[write("model", "/opt/ml/processing/model")]))
metrics = PropertyFile(name="metrics", output_name="metrics", path="metrics.json")
evaluate_model = ProcessingStep(name="evaluate_model", property_files=[metrics], step_args=processor("evaluate_model").run(
    inputs=[read("model", output_uri(train_model, "model"), "/opt/ml/processing/model"),
            read("test_data", output_uri(load_data, "data"), "/opt/ml/processing/data")],
    outputs=[write("metrics", "/opt/ml/processing/metrics")]))
deploy_model = ProcessingStep(name="deploy_model", step_args=processor("deploy_model").run(
    inputs=[read("model", output_uri(train_model, "model"), "/opt/ml/processing/model")]))
check = ConditionStep(
    name="check_accuracy",
    conditions=[ConditionGreaterThanOrEqualTo(
        left=JsonGet(step_name=evaluate_model.name, property_file=metrics, json_path="accuracy"), right=min_accuracy)],
    if_steps=[deploy_model], else_steps=[])
pipeline = Pipeline(name="training-pipeline", parameters=[min_accuracy],
                    steps=[load_data, train_model, evaluate_model, check], sagemaker_session=session,
                    pipeline_experiment_config=None)
print(json.dumps(json.loads(pipeline.definition()), indent=1, sort_keys=True))
