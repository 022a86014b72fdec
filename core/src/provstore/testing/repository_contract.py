"""Placeholder: the repository backend contract suite is being written."""


class RepositoryBackendContract:
    """The contract every repository backend passes."""
