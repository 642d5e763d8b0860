"""Container images: settings, Dockerfile rendering, builders and registries (issue: images).

Backend-neutral: adapters only ever see the final image reference a step runs in.
"""
