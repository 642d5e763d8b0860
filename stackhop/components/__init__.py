"""Reusable components from files: KFP component YAML in, KFP v1 component YAML out.

`load_component("component.yaml")` reads a KFP v1 component file (the format of kubeflow/pipelines'
`components/` tree) or the single-component document kfp's v2 compiler writes, and returns a
component called like a step in any pipeline; `export_component` writes one, so a component
defined with `@container_component` can be shared with KFP users and read back unchanged.
"""

from __future__ import annotations

from stackhop.components.export import export_component
from stackhop.components.load import LoadedComponent, load_component, load_component_from_text

__all__ = ["LoadedComponent", "export_component", "load_component", "load_component_from_text"]
