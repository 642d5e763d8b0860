"""Stand-ins for backends that cannot run on a test machine, strict enough to prove an adapter.

`stackhop.testing.kubernetes.FakeKubernetes` is an API server with a kubelet that runs containers
as local processes; `stackhop.testing.sagemaker.FakeSageMaker` is moto's server plus the
SageMaker Pipelines operations moto lacks. Users can use them in their own tests.
"""
