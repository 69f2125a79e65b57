"""Pure normalisation of what goes into an audit record: bounded text, bounded JSON details, hashed client addresses.

Nothing here raises on odd input: a value that is not what was expected is stored stringified and truncated, so a
caller's bug never loses the fact that something happened.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime

MAX_TEXT = 200  # room, actor, subject and every string inside details
MAX_KIND = 40
MAX_KEY = 64
MAX_ITEMS = 20  # keys of a details mapping, items of a list inside it
MAX_DEPTH = 3
MAX_DETAILS_JSON = 2000  # characters of the canonical JSON of details
CLIENT_HASH_HEX = 16  # 64 bits of HMAC-SHA256: enough to tell clients apart, useless to recover an address
ELLIPSIS = '…'
TRUNCATED_KEY = '_truncated'


def bound_text(value: object, limit: int = MAX_TEXT) -> str:
    """`value` as valid UTF-8 text of at most `limit` characters (`str()` of a non-string; never raises)."""
    if not isinstance(value, str):
        try:
            value = str(value)
        except Exception:  # a broken __str__, an int too long to print
            value = f'<{type(value).__name__}>'
    if len(value) > limit:
        value = value[: limit - 1] + ELLIPSIS
    # Lone surrogates cannot be stored as UTF-8 (SQLite would refuse the row).
    return value.encode('utf-8', 'replace').decode('utf-8')


def bound_kind(value: object) -> str:
    """A record kind: short text, never empty ('unknown')."""
    return bound_text(value, MAX_KIND).strip() or 'unknown'


def bound_optional(value: object) -> str | None:
    """`None` stays `None`; anything else is bounded text."""
    return None if value is None else bound_text(value)


def bound_details(details: object) -> dict[str, object]:
    """A JSON-able dict whose canonical JSON is at most MAX_DETAILS_JSON characters.

    Keys become bounded strings, strings are bounded, non-finite floats and huge ints become strings, lists and
    mappings are cut at MAX_ITEMS entries and MAX_DEPTH levels, anything else is stringified. When the result is
    still too large, trailing keys are dropped and `_truncated: true` is added.
    """
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        return {'value': bound_text(details)}
    result = _bound_mapping(details, depth=1)
    if len(canonical_json(result)) <= MAX_DETAILS_JSON:
        return result
    kept: dict[str, object] = {TRUNCATED_KEY: True}
    for key, value in result.items():
        candidate = {**kept, key: value}
        if len(canonical_json(candidate)) > MAX_DETAILS_JSON:
            break
        kept = candidate
    return kept


def hash_client(address: object, salt: bytes) -> str | None:
    """A salted, truncated HMAC-SHA256 of a client address; `None` for no address. The raw address is never kept."""
    if address is None:
        return None
    text = address if isinstance(address, str) else bound_text(address, 1000)
    if not text.strip():
        return None
    digest = hmac.new(salt, text.strip().encode('utf-8', 'replace'), hashlib.sha256).hexdigest()
    return digest[:CLIENT_HASH_HEX]


def format_at(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a `Z`, e.g. 2026-11-30T12:52:05.123Z (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def canonical_json(value: object) -> str:
    """The one JSON spelling used for hashing and storing: sorted keys, no spaces, UTF-8 kept, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(',', ':'), ensure_ascii=False, allow_nan=False)


def _bound_mapping(mapping: Mapping[object, object], depth: int) -> dict[str, object]:
    result: dict[str, object] = {}
    try:
        items = list(mapping.items())
    except Exception:
        return {'value': bound_text(mapping)}
    for key, value in items[:MAX_ITEMS]:
        result[bound_text(key, MAX_KEY)] = _bound_value(value, depth)
    if len(items) > MAX_ITEMS:
        result[TRUNCATED_KEY] = True
    return result


def _bound_value(value: object, depth: int) -> object:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else bound_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else bound_text(value)
    if isinstance(value, str):
        return bound_text(value)
    if depth < MAX_DEPTH and isinstance(value, Mapping):
        return _bound_mapping(value, depth + 1)
    if depth < MAX_DEPTH and isinstance(value, list | tuple):
        return [_bound_value(item, depth + 1) for item in value[:MAX_ITEMS]]
    return bound_text(value)
