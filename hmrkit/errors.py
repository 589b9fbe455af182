"""Errors hmrkit raises for bad input: the CLI prints their message as one line and exits non-zero."""


class HmrkitError(Exception):
    """Base class: ``str(error)`` is a complete, one-line message for the user."""


class ModelAssetError(HmrkitError):
    """A model file or cache is missing, malformed or of the wrong version."""


class NoPersonError(HmrkitError):
    """Nothing to reconstruct was found in an image."""
