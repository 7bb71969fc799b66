"""Exceptions that carry a message meant for the user, not a traceback."""


class ConvLabError(Exception):
    """Base class: the message is shown to the user as it is."""


class DataError(ConvLabError, ValueError):
    """A dataset file or array is malformed, or a dataset cannot be loaded."""


class ArchitectureError(ConvLabError, ValueError):
    """An architecture cannot be built (for example, pooling shrinks the map to 0x0)."""


class TrainingConfigError(ConvLabError, ValueError):
    """A training setting is out of range."""


class DrawingError(ConvLabError, ValueError):
    """A drawing or uploaded image cannot be turned into model input."""


class RunError(ConvLabError, ValueError):
    """A run cannot be found, read, created or changed as asked."""


class TrainingDiverged(ConvLabError, ArithmeticError):
    """The loss became NaN or infinite: training ends by raising this (as TerminateOnNaN(raise_error=True))."""


class ModelFileError(ConvLabError, ValueError):
    """A model file cannot be used: not a Keras model, unsafe, or not fitting the dataset."""


class ExportError(ConvLabError, ValueError):
    """A run cannot be exported as asked (a notebook, a report or a model file), or an export failed its check."""
