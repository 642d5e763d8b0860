"""Releases and promotion: compile once, rebind per environment, gate, record."""
