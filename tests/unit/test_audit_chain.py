"""The pure audit layers: the hash chain and its verification, field bounding, client hashing, CSV export."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta, timezone

from audit.chain import GENESIS, AuditRecord, record_hash, seal, verify
from audit.export import records_csv
from audit.fields import (
    MAX_DETAILS_JSON,
    MAX_TEXT,
    bound_details,
    bound_kind,
    bound_text,
    canonical_json,
    format_at,
    hash_client,
)


def chain(n: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    for i in range(n):
        previous = records[-1] if records else None
        at = f'2026-11-30T12:00:0{i}.000Z'
        records.append(seal(previous, at=at, kind='joined', room='r', actor=f'p{i}', details={'i': i}))
    return records


def test_a_chain_starts_at_genesis_and_links_each_record_to_the_previous() -> None:
    records = chain(3)
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == GENESIS
    assert records[1].prev_hash == records[0].hash and records[2].prev_hash == records[1].hash
    assert all(record_hash(r) == r.hash and len(r.hash) == 64 for r in records)


def test_verify_ok_names_the_count() -> None:
    result = verify(chain(5))
    assert result.ok and result.count == 5 and result.broken_seq is None
    assert result.describe() == 'OK: 5 records, hash chain intact'
    assert verify([]).ok


def test_a_changed_field_is_a_hash_mismatch_at_that_record() -> None:
    changes: list[tuple[str, object]] = [('actor', 'mallory'), ('at', '2026-11-30T13:00Z'), ('details', {'i': 9})]
    for field, value in changes:
        records = chain(5)
        records[2] = dataclasses.replace(records[2], **{field: value})  # type: ignore[arg-type]
        result = verify(records)
        assert not result.ok and result.broken_seq == 3, field
        assert result.reason is not None and 'hash mismatch' in result.reason


def test_a_rehashed_forgery_breaks_the_link_of_the_next_record() -> None:
    records = chain(5)
    forged = dataclasses.replace(records[1], actor='mallory')
    records[1] = dataclasses.replace(forged, hash=record_hash(forged))
    result = verify(records)
    assert not result.ok and result.broken_seq == 3
    assert result.reason == "broken link: prev_hash does not match record 2's hash"


def test_a_removed_record_is_a_gap_in_seq() -> None:
    records = chain(5)
    del records[2]
    result = verify(records)
    assert not result.ok and result.broken_seq == 4 and result.reason == 'gap in seq: expected record 3, found 4'
    first_gone = chain(3)[1:]
    assert verify(first_gone).broken_seq == 2


def test_swapped_records_are_reported_at_the_first_out_of_place() -> None:
    records = chain(4)
    records[1], records[2] = records[2], records[1]
    result = verify(records)
    assert not result.ok and result.broken_seq == 3


def test_bound_text_never_raises_and_cuts_long_values() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError

    assert bound_text(Broken()) == '<Broken>'
    assert bound_text(10**5000).startswith('<int')  # too many digits to print
    long = bound_text('x' * 1000)
    assert len(long) == MAX_TEXT and long.endswith('…')
    assert bound_text('a\ud800b') == 'a?b'  # a lone surrogate cannot be stored as UTF-8
    assert bound_kind('') == 'unknown' and bound_kind(None) == 'None'


def test_bound_details_is_json_and_bounded() -> None:
    odd = {
        1: float('nan'),
        'inf': float('inf'),
        'big': 2**80,
        'tuple': (1, 'a', None),
        'set': {1},
        'nested': {'a': {'b': {'c': {'d': 1}}}},
        'bytes': b'\x00',
    }
    bounded = bound_details(odd)
    assert json.loads(canonical_json(bounded)) == bounded  # a JSON round trip changes nothing (the hash holds)
    assert bounded['1'] == 'nan' and bounded['big'] == str(2**80) and bounded['tuple'] == [1, 'a', None]
    assert bound_details(None) == {} and bound_details('text') == {'value': 'text'}
    huge = bound_details({f'k{i}': 'v' * 190 for i in range(20)})
    assert len(canonical_json(huge)) <= MAX_DETAILS_JSON and huge['_truncated'] is True
    many = bound_details({f'k{i}': i for i in range(100)})
    assert len(many) == 21 and many['_truncated'] is True


def test_client_hash_is_salted_truncated_and_never_the_address() -> None:
    hashed = hash_client('203.0.113.7', b'salt-a')
    assert hashed is not None and len(hashed) == 16 and '203' not in hashed
    assert hashed == hash_client('203.0.113.7', b'salt-a')
    assert hashed != hash_client('203.0.113.7', b'salt-b')
    assert hashed != hash_client('203.0.113.8', b'salt-a')
    assert hash_client(None, b's') is None and hash_client('  ', b's') is None


def test_time_is_utc_with_milliseconds() -> None:
    moment = datetime(2026, 11, 30, 14, 5, 6, 789_123, tzinfo=timezone(timedelta(hours=2)))
    assert format_at(moment) == '2026-11-30T12:05:06.789Z'
    assert format_at(datetime(2026, 1, 2, 3, 4, 5)) == '2026-01-02T03:04:05.000Z'
    assert format_at(datetime(2026, 1, 2, tzinfo=UTC)) == '2026-01-02T00:00:00.000Z'


def test_csv_quotes_commas_quotes_and_newlines() -> None:
    record = seal(
        None, at='2026-11-30T12:00:00.000Z', kind='joined', room='r', actor='Smith, "Jo"\nMD', details={'a': 'b,c'}
    )
    text = records_csv([record])
    assert text.startswith('seq,time_utc,kind,room,actor,subject,client_hash,details,hash\r\n')
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][4] == 'Smith, "Jo"\nMD'
    assert json.loads(rows[1][7]) == {'a': 'b,c'}


def test_csv_cells_never_become_spreadsheet_formulas() -> None:
    record = seal(None, at='t', kind='joined', room='r', actor='=HYPERLINK("http://evil")', subject='+1', client='@x')
    rows = list(csv.reader(io.StringIO(records_csv([record]))))
    assert rows[1][4] == '\'=HYPERLINK("http://evil")'
    assert rows[1][5] == "'+1" and rows[1][6] == "'@x"
    assert all(not cell.startswith(('=', '+', '-', '@')) for cell in rows[1])
