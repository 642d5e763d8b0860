"""Built-in image builders: `buildah` (daemonless, the default on CI) and `docker` (needs a daemon).

Each one turns a `BuildSpec` into a pushed image and returns its manifest digest; remote
builders (kaniko, CodeBuild, Cloud Build) live beside them and read the context from the
artifact store instead of a local directory.
"""
