"""Built-in plugins that are not orchestrators: materializers (`materializers/`) and images (`images.py`: the
image builders, and the hooks compile uses to resolve and explain step images).

They register through the same `stackhop` entry points and hooks third-party plugins use.
"""
