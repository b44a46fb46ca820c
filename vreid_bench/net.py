"""Failing fast offline: before a download, make sure its server can be reached, in seconds, not a minute.

Download libraries retry a host that cannot be reached for a minute or more before they give up. vreid asks
first: a name that needs a download (CLIP weights, ImageNet ResNet-50, a captioning model) is only fetched after
a TCP connection to its server succeeds within :data:`PROBE_TIMEOUT_S`; otherwise the one-line error with the
local-path fix comes at once. ``HF_HUB_OFFLINE=1`` (or ``TRANSFORMERS_OFFLINE=1``) skips the probe for the
Hugging Face hub and fails at once. Files already in a cache never get here.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

from vreid_bench.errors import ConfigError

PROBE_TIMEOUT_S = 3.0
TRUE_WORDS = ("1", "true", "yes", "on")


def hub_endpoint() -> str:
    """The Hugging Face hub's address (``HF_ENDPOINT`` where set)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_offline() -> bool:
    return any(os.environ.get(name, "").strip().lower() in TRUE_WORDS
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def unreachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why ``url``'s server cannot be reached within ``timeout`` seconds, or None when it answers.

    The connection (name lookup included) runs in a daemon thread, so a lookup that hangs costs ``timeout``
    seconds too, never more.
    """
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{type(exc).__name__}: {exc}".rstrip(": "))

    thread = threading.Thread(target=connect, daemon=True, name=f"probe {host}")
    thread.start()
    thread.join(timeout)
    if not outcome:
        return f"no answer from {host}:{port} within {timeout:g} s"
    return None if outcome[0] is None else f"{host}:{port} unreachable ({outcome[0]})"


def require_download(url: str, what: str, fix: str, hub: bool = False) -> None:
    """Raise a one-line :class:`ConfigError` naming ``what`` and ``fix`` unless ``url`` can be downloaded now.

    ``hub``: the file comes from the Hugging Face hub, so the hub's offline switches apply.
    """
    if hub and hub_offline():
        raise ConfigError(f"{what} needs a download but the Hugging Face hub is switched off (HF_HUB_OFFLINE=1): {fix}")
    reason = unreachable(url)
    if reason is not None:
        raise ConfigError(f"{what} needs a download but {reason}: {fix}")
