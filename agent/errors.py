"""The agent package's exceptions. Every message says what to do next."""


class HearthError(Exception):
    """Base class for errors Hearth reports to the user as one line."""


class ModelError(HearthError):
    """The model could not be found, converted, validated or loaded."""


class AdapterLoadError(HearthError):
    """An adapter could not be loaded onto the base model."""


class NetworkRefused(HearthError):
    """Something tried to reach the network while Hearth is offline."""
