"""The hash chain: an audit record, its SHA-256, and verification of a sequence of records. Pure: no I/O, no clock.

Each record's hash covers every field and the previous record's hash, so changing, removing or reordering any record
breaks the chain at that point. Records are numbered 1, 2, 3, ... and the first links to GENESIS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from audit.fields import canonical_json

GENESIS = '0' * 64


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditRecord:
    """One appended fact: `kind` happened in `room`, done by `actor` (to `subject`), at `at` (UTC, ms).

    `client` is a salted hash of the actor's client address (never the address), `details` a small JSON-able dict.
    """

    seq: int
    at: str
    kind: str
    room: str
    actor: str
    subject: str | None = None
    client: str | None = None
    details: dict[str, object] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ''


@dataclass(frozen=True, kw_only=True, slots=True)
class VerifyResult:
    """The outcome of verifying a chain: `ok`, how many records were read, and the first broken one."""

    ok: bool
    count: int
    broken_seq: int | None = None
    reason: str | None = None

    def describe(self) -> str:
        """One line for people: 'OK: 12 records' or 'BROKEN at record 7: ...'."""
        if self.ok:
            return f'OK: {self.count} record{"" if self.count == 1 else "s"}, hash chain intact'
        return f'BROKEN at record {self.broken_seq}: {self.reason}'


def record_hash(record: AuditRecord) -> str:
    """SHA-256 (hex) over the canonical JSON of every field but `hash`, `prev_hash` included."""
    payload = {
        'seq': record.seq,
        'at': record.at,
        'kind': record.kind,
        'room': record.room,
        'actor': record.actor,
        'subject': record.subject,
        'client': record.client,
        'details': record.details,
        'prev_hash': record.prev_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode('utf-8')).hexdigest()


def seal(
    previous: AuditRecord | None,
    *,
    at: str,
    kind: str,
    room: str,
    actor: str,
    subject: str | None = None,
    client: str | None = None,
    details: dict[str, object] | None = None,
) -> AuditRecord:
    """The record that follows `previous` (or starts the chain), with its seq, prev_hash and hash filled in.

    The values are taken as given: callers normalise them first (audit.fields).
    """
    unsealed = AuditRecord(
        seq=1 if previous is None else previous.seq + 1,
        at=at,
        kind=kind,
        room=room,
        actor=actor,
        subject=subject,
        client=client,
        details=dict(details or {}),
        prev_hash=GENESIS if previous is None else previous.hash,
    )
    return replace(unsealed, hash=record_hash(unsealed))


def verify(records: Iterable[AuditRecord]) -> VerifyResult:
    """Check a whole chain in seq order; report the first record with a gap in seq, a broken link or a wrong hash.

    A gap (a removed or inserted record) is reported before a broken link, and a broken link before a content change,
    so the reason names the likeliest cause. Truncating the newest records cannot be seen from the chain alone.
    """
    count = 0
    expected_seq = 1
    expected_prev = GENESIS
    for record in records:
        count += 1
        if record.seq != expected_seq:
            return _broken(count, record.seq, f'gap in seq: expected record {expected_seq}, found {record.seq}')
        if record.prev_hash != expected_prev:
            what = 'the chain start' if expected_seq == 1 else f"record {expected_seq - 1}'s hash"
            return _broken(count, record.seq, f'broken link: prev_hash does not match {what}')
        if record_hash(record) != record.hash:
            return _broken(count, record.seq, 'hash mismatch: the record was changed after it was written')
        expected_seq = record.seq + 1
        expected_prev = record.hash
    return VerifyResult(ok=True, count=count)


def _broken(count: int, seq: int, reason: str) -> VerifyResult:
    return VerifyResult(ok=False, count=count, broken_seq=seq, reason=reason)
