"""Resident memory of this process, for the peak-memory measurements
(``bench/peakmem_step.py``, the asv suite's ``bench_peakmem``); Linux's /proc/self."""
import ctypes
import ctypes.util
import re

_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))

#: True where the C library can hand freed memory back to the system (glibc).
CAN_TRIM = hasattr(_LIBC, "malloc_trim")


def status(key):
    """``key`` of /proc/self/status (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M).group(1)) * 1024


def reset_peak():
    """Restart VmHWM from the current resident memory (Linux 4.0+)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def trim():
    """Hand the memory freed so far back to the system (glibc's ``malloc_trim``), so
    that it cannot serve the next allocation unseen; nothing where ``CAN_TRIM`` is
    False."""
    if CAN_TRIM:
        _LIBC.malloc_trim(0)
