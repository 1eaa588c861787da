"""Errors of the model package (importable without torch)."""


class ModelError(Exception):
    """A model folder is missing, from another version, or damaged."""
