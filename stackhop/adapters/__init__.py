"""Backends. Each sub-package holds everything about one orchestrator and registers itself
through the `stackhop` plugin hooks, exactly as a third-party adapter would."""
