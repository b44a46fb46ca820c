"""Exception types for errors a user can fix.

The CLI prints a ``VreidError`` as one line and exits with status 2; anything else is a bug and keeps its
traceback.
"""


class VreidError(Exception):
    """An error caused by the user's input; its message names the problem and the fix."""


class DatasetNotFoundError(VreidError):
    """A dataset root, or a file the dataset layout requires, is missing."""


class DatasetFormatError(VreidError):
    """A dataset file exists but its content does not match the expected layout."""


class UnknownNameError(VreidError):
    """A name (dataset, protocol, model ...) is not in its registry."""


class ConfigError(VreidError):
    """A configuration value is invalid."""


class MetricInputError(VreidError, ValueError):
    """A metric was given arrays of the wrong shape, type or content."""


class NoValidQueryError(MetricInputError):
    """No query keeps a true match in the gallery after the protocol's removals."""


def user_message(exc: BaseException) -> str:
    """The one line a user error prints. Raised in a DataLoader worker, it reaches the main process with the
    worker's traceback in front of it (torch re-raises ``type(exc)(traceback text)``); the last line is its own."""
    text = str(exc).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text
