"""The local backend: every step a process on this machine, real artifacts in the artifact store."""
