"""The Kubernetes backend: one batch/v1 Job per step, driven from the client or from a driver Job."""
