"""Shared helpers of the benchmarks: loopback-only network namespace, /proc readings, percentiles."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence

NETNS_ENV = 'ORANGE_IN_NETNS'
CLK_TCK = os.sysconf('SC_CLK_TCK')


def reexec_in_loopback_netns(module: str) -> None:
    """As root, re-run `python -m module ...` in a network namespace that only has `lo` (like scripts/test).

    Returns when already inside one or when that is not possible (not root, no `unshare`); otherwise the process is
    replaced and its exit status is the child's.
    """
    if os.environ.get(NETNS_ENV) or os.geteuid() != 0 or not shutil.which('unshare') or not shutil.which('ip'):
        return
    if subprocess.run(['unshare', '-n', 'true'], capture_output=True, check=False).returncode != 0:
        return
    os.environ[NETNS_ENV] = '1'
    script = 'ip link set lo up && exec "$@"'
    os.execvp(
        'unshare', ['unshare', '-n', '--', 'bash', '-c', script, 'bash', sys.executable, '-m', module, *sys.argv[1:]]
    )


def network_note() -> str:
    if os.environ.get(NETNS_ENV):
        return 'loopback-only network namespace (unshare -n)'
    return 'host network namespace, loopback addresses only (not root or no unshare)'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int | str = 'self') -> float:
    """utime + stime of a process (all its threads) from /proc/<pid>/stat."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int | str = 'self') -> float:
    """VmRSS of a process in MB."""
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return math.nan


def loadavg() -> str:
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def machine_cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, to report how busy it was during a window."""
    with open('/proc/stat') as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: Sequence[float]) -> str:
    if not values:
        return 'n=0'
    return (
        f'n={len(values)} p50={percentile(values, 50):.0f} p95={percentile(values, 95):.0f} '
        f'min={min(values):.0f} max={max(values):.0f}'
    )
