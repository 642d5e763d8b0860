"""Vertex AI Pipelines: the shared PipelineSpec compiler, submitted with google-cloud-aiplatform."""
