"""Self-hosted Kubeflow Pipelines: the shared PipelineSpec plus a kfp-kubernetes platform spec, submitted with kfp.Client."""
