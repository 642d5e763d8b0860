"""Stand-ins for backends that cannot run on a test machine, strict enough to prove an adapter.

- `stackhop.testing.kubernetes.FakeKubernetes`: an API server with a kubelet that runs
  containers as local processes.
- `stackhop.testing.sagemaker.FakeSageMaker`: moto's server plus the SageMaker Pipelines
  operations moto lacks.
- `stackhop.testing.vertex.FakeVertex`: the Vertex AI PipelineJobs REST API, for the real
  aiplatform client.
- `stackhop.testing.kfp.FakeKFP`: the Kubeflow Pipelines v2beta1 API, for the real `kfp.Client`.
- `stackhop.testing.gcs.FakeGCS`: Cloud Storage on loopback (gcp-storage-emulator).
- `stackhop.testing.registry.LocalRegistry`: Debian's docker-registry (CNCF distribution) on loopback.
- `stackhop.testing.codebuild` and `stackhop.testing.cloudbuild`: AWS CodeBuild (moto) and a
  Google Cloud Build stand-in, for the remote image builders.

Each module's docstring lists what it does not model. Users can use them in their own tests:
`pip install 'stackhop[testing]'` brings what they import (docs/testing.md); `import stackhop`
never imports them.
"""
