"""The `stackhop` command line."""
