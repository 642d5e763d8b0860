"""The KFP v2 PipelineSpec: one compiler and one emulator shared by the Vertex AI and Kubeflow adapters."""
