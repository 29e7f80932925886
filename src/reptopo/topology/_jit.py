"""Optional numba compilation, done lazily so importing reptopo.topology stays cheap."""
from __future__ import annotations

import functools
from typing import Callable


@functools.cache
def compiled(fn: Callable) -> Callable | None:
    """``fn`` compiled with numba (nogil, cached on disk) on first use; None without numba."""
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(cache=True, nogil=True)(fn)
