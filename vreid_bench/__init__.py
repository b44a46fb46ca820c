"""vreid core: data model, dataset loaders, protocol, samplers, metrics and CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vreid")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
