"""The project's own exception types.

Every mistake a user can make (a wrong name, a bad option, a shape that does not fit) raises one of
these with a message that says what would be valid. The CLI prints such a message as one line and
exits non-zero; anything else is a bug in this package and keeps its traceback.
"""


class TinygradRNNError(Exception):
    """Base class of every error this package raises on purpose."""


class ShapeError(TinygradRNNError, ValueError):
    """Tensor shapes that do not fit the operation."""


class DTypeError(TinygradRNNError, TypeError):
    """An input whose dtype does not match the weights it meets (float64 data into a float32 model)."""


class BackendError(TinygradRNNError, RuntimeError):
    """An array backend that is unknown, unavailable, or mixed with another in one operation."""


class GraphError(TinygradRNNError, RuntimeError):
    """Misuse of the autograd graph, e.g. a second backward through freed intermediates."""


class UnknownPluginError(TinygradRNNError, KeyError):
    """A cell, dataset, regulariser or optimiser name that is not registered."""

    def __str__(self):  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


class PluginError(TinygradRNNError, RuntimeError):
    """A plugin that cannot be loaded or registered (its file is named in the message)."""


class ConfigError(TinygradRNNError, ValueError):
    """A configuration value or option that is malformed or out of range."""


class DivergedError(TinygradRNNError, FloatingPointError):
    """Training produced NaN or inf."""
