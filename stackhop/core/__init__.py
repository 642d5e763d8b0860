"""The backend-agnostic core: IR, DSL, validation, stacks, runs, store, artifacts, plugins.

Nothing in this package knows about any particular orchestrator.
"""
