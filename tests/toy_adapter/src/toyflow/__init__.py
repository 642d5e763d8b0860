"""Toyflow: a spool-directory orchestrator, and the stackhop adapter for it (see docs/adapters.md)."""
