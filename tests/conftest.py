"""Shared test configuration: media only ever on loopback."""

import os
import tempfile

# The app under the `user` fixture builds its media back end from the environment: keep it offline and on loopback.
for _name in ('CALLS_APP_ID', 'CALLS_APP_SECRET', 'CALLS_API_URL', 'TURN_SERVICE_ID', 'TURN_SERVICE_TOKEN'):
    os.environ.pop(_name, None)
os.environ['SFU_ICE_HOSTS'] = '127.0.0.1'
os.environ['ICE_SERVERS'] = ''
os.environ.pop('SFU_SIMULATE_LOSS', None)
# The existing tests open in-room pages directly, as the original allowed: open access unless a test asks for invites
# (monkeypatch.setenv('ROOM_ACCESS', 'invite'), or start_app(..., {'ROOM_ACCESS': 'invite'}) for the browser tests).
os.environ['ROOM_ACCESS'] = 'open'  # a developer's diagnostic packet loss never reaches the tests
# A developer's .env/.dev.vars (perhaps with real Cloudflare credentials) is never read by tests.
os.environ['ORANGE_CONFIG_DIR'] = tempfile.mkdtemp(prefix='orange-config-')
# The app under the `user` fixture records into an audit log of this test run, never a developer's .nicegui/audit.db.
os.environ['AUDIT_DB'] = os.path.join(tempfile.mkdtemp(prefix='orange-audit-'), 'audit.db')
os.environ['AUDIT_SALT'] = 'test-run-salt'


def pytest_collection_modifyitems(items: list) -> None:  # type: ignore[type-arg]
    """Browser tests last: cheap layers report first, and sync Playwright's loop never overlaps async tests."""
    import pytest

    def is_e2e(item: object) -> bool:
        return '/tests/e2e/' in str(getattr(item, 'path', ''))

    for item in items:
        if is_e2e(item):
            item.add_marker(pytest.mark.e2e)
    items.sort(key=is_e2e)
