"""Audit log cost: how long one `AuditLog.record` call takes (it runs on the event loop), and how fast verify reads.

Usage: .venv/bin/python -m bench.audit [--records 5000] [--dir DIR]

Writes to a fresh SQLite file in a temporary directory (or DIR: put it on the disk the app will use), with the
app's settings (WAL, synchronous=NORMAL), and records typical calls: a room, an actor, a subject, a client address
and a small details dict.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from audit import AuditLog

KINDS = ('joined', 'watch_started', 'watch_stopped', 'knock', 'admitted', 'left')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--records', type=int, default=5000)
    parser.add_argument('--dir', type=Path, default=None, help='where to put the file (default: a temp dir)')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        log = AuditLog.open(Path(folder) / 'audit.db', client_salt=b'bench')
        durations = []
        started = time.perf_counter()
        for i in range(args.records):
            begin = time.perf_counter()
            log.record(
                KINDS[i % len(KINDS)],
                room=f'ward-{i % 7}-3f9c2a71d4e8b605',
                actor='Tech Kim (technician)',
                subject=f'MRI bore camera {i % 4}',
                client=f'10.0.{i % 256}.{i % 200}',
                details={'track': f'session-{i}/camera-{i % 4}', 'role': 'technician'},
            )
            durations.append(time.perf_counter() - begin)
        elapsed = time.perf_counter() - started
        begin = time.perf_counter()
        result = log.verify()
        verify_s = time.perf_counter() - begin
        log.close()
    micros = sorted(d * 1e6 for d in durations)
    print(f'audit.record: {args.records} records in {elapsed:.2f} s = {args.records / elapsed:,.0f} records/s')
    print(
        f'  per call: mean {statistics.fmean(micros):.0f} µs, median {micros[len(micros) // 2]:.0f} µs, '
        f'p99 {micros[int(len(micros) * 0.99)]:.0f} µs, max {micros[-1]:.0f} µs'
    )
    print(f'audit.verify: {result.describe()} in {verify_s * 1000:.0f} ms ({result.count / verify_s:,.0f} records/s)')


if __name__ == '__main__':
    main()
