"""The SageMaker Pipelines backend: one Processing step per IR step, instance types from a bundled catalog."""
