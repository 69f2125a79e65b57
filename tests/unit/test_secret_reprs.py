"""Secrets never show in the repr of the configuration objects that carry them (a log line or a traceback)."""

from __future__ import annotations

from media.backend import MediaBackendConfig
from media.sfu.config import SfuConfig

SECRETS = ('calls-secret-8f2e1c0d9b7a', 'turn-token-4a5b6c7d8e9f', 'sfu-secret-0123456789abcdef')


def test_media_backend_config_repr_has_no_secret() -> None:
    config = MediaBackendConfig(
        calls_app_id='app',
        calls_app_secret=SECRETS[0],
        turn_service_id='turn',
        turn_service_token=SECRETS[1],
        sfu_app_secret=SECRETS[2],
    )
    assert not any(secret in repr(config) for secret in SECRETS)
    assert 'calls_app_id' in repr(config)


def test_sfu_config_repr_has_no_secret() -> None:
    assert SECRETS[2] not in repr(SfuConfig(app_id='app', app_secret=SECRETS[2]))
