"""Access to the Hugging Face hub: reachability, offline mode, and one clear error when weights
cannot be fetched."""
from __future__ import annotations

from reptopo.runtime.errors import ReptopoError


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub's host resolves and accepts a connection (a few seconds at most)."""
    import os
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


class hub_offline_when_unreachable:
    """Context: when the hub cannot be reached, switch huggingface_hub to offline mode, so loads use
    the local cache at once (or fail at once) instead of retrying the network for a minute."""

    def __enter__(self):
        self._saved = None
        try:
            import huggingface_hub.constants as hc
        except ImportError:  # pragma: no cover
            return self
        if not hc.HF_HUB_OFFLINE and not hub_reachable():
            self._saved = hc.HF_HUB_OFFLINE
            hc.HF_HUB_OFFLINE = True
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            import huggingface_hub.constants as hc

            hc.HF_HUB_OFFLINE = self._saved


def hub_error(arch: str, exc: BaseException) -> ReptopoError:
    return ReptopoError(
        f"model.pretrained=true needs the ImageNet weights of {arch!r} from the Hugging Face hub, which "
        f"is unreachable (no network) and they are not in the local cache; set model.pretrained=false "
        f"or run where the hub is reachable"
    )


def looks_like_network_error(exc: BaseException) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        name = type(exc).__name__
        text = str(exc).lower()
        if isinstance(exc, OSError) or any(k in name for k in ("Connection", "Timeout", "HTTP", "Hub", "Offline")):
            return True
        if any(k in text for k in ("connect", "network", "resolve", "offline", "hf_hub", "huggingface")):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
