"""Built-in plugins that are not orchestrators (image builders, notifiers, catalogs).

They register through the same `stackhop` hooks as adapters do.
"""
