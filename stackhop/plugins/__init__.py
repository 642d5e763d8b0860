"""Built-in plugins that are not orchestrators: materializers (here) and image builders (`stackhop.images`).

They register through the same `stackhop` entry points and hooks third-party plugins use.
"""
