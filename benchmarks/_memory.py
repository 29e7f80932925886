"""Peak-memory helpers shared by the benchmark scripts (Linux /proc; None/False elsewhere)."""
from __future__ import annotations


def status_kib(field: str) -> float | None:
    """A memory field (KiB) of /proc/self/status, e.g. "VmHWM" (peak RSS), or None off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark (Linux >= 4.0), so the peak seen after a call is the
    call's own. Returns False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
