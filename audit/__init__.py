"""The audit trail: an append-only, hash-chained log of who did what in which room (issue 11, item 6).

`AuditLog` (audit.store) is the only I/O; `audit.chain` (records, hashes, verification), `audit.fields`
(bounding, client hashing) and `audit.export` (CSV) are pure. `python -m audit verify` checks a log file.
"""

from audit.chain import GENESIS, AuditRecord, VerifyResult, record_hash, verify
from audit.store import AuditError, AuditLog

__all__ = ['GENESIS', 'AuditError', 'AuditLog', 'AuditRecord', 'VerifyResult', 'record_hash', 'verify']
