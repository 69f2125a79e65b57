from pathlib import Path

import pytest

from settings import DEFAULT_CALLS_API_URL, SettingsError, load_settings

VARIABLES = (
    'CALLS_APP_ID',
    'CALLS_APP_SECRET',
    'CALLS_API_URL',
    'TURN_SERVICE_ID',
    'TURN_SERVICE_TOKEN',
    'MAX_WEBCAM_BITRATE',
    'MAX_WEBCAM_FRAMERATE',
    'MAX_WEBCAM_QUALITY_LEVEL',
    'EXPERIMENTAL_SIMULCAST_ENABLED',
    'HOST',
    'PORT',
    'TLS_CERTFILE',
    'TLS_KEYFILE',
    'SFU_APP_ID',
    'SFU_APP_SECRET',
    'SFU_ICE_HOSTS',
    'SFU_SIMULATE_LOSS',
    'ICE_SERVERS',
    'STORAGE_SECRET',
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_originals(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.calls_api_url == DEFAULT_CALLS_API_URL
    assert settings.max_webcam_bitrate == 1_200_000
    assert settings.max_webcam_framerate == 24
    assert settings.max_webcam_quality_level == 1080
    assert settings.experimental_simulcast_enabled is False
    assert (settings.host, settings.port) == ('127.0.0.1', 8080)
    assert settings.uses_cloudflare is False
    assert settings.ice_servers == []  # never aiortc's built-in Google STUN
    assert settings.sfu_ice_hosts == []
    assert settings.sfu_app_id_generated
    assert len(settings.sfu_app_secret.get_secret_value()) >= 32


def test_random_sfu_credentials_differ_per_run(tmp_path: Path) -> None:
    first, second = load_settings(tmp_path), load_settings(tmp_path)
    assert first.sfu_app_id != second.sfu_app_id
    assert first.sfu_app_secret.get_secret_value() != second.sfu_app_secret.get_secret_value()


def test_dev_vars_file_is_read(tmp_path: Path) -> None:
    (tmp_path / '.dev.vars').write_text('CALLS_APP_ID=abc123\nCALLS_APP_SECRET=s3cret\nMAX_WEBCAM_FRAMERATE=15\n')
    settings = load_settings(tmp_path)
    assert settings.calls_app_id == 'abc123'
    assert settings.calls_app_secret is not None and settings.calls_app_secret.get_secret_value() == 's3cret'
    assert settings.max_webcam_framerate == 15
    assert settings.uses_cloudflare


def test_env_file_overrides_dev_vars_and_environment_overrides_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / '.dev.vars').write_text('PORT=9001\nMAX_WEBCAM_BITRATE=100\n')
    (tmp_path / '.env').write_text('PORT=9002\n')
    monkeypatch.setenv('MAX_WEBCAM_BITRATE', '300')
    settings = load_settings(tmp_path)
    assert settings.port == 9002
    assert settings.max_webcam_bitrate == 300


def test_secrets_do_not_show_in_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('CALLS_APP_ID', 'abc')
    monkeypatch.setenv('CALLS_APP_SECRET', 'very-secret-value')
    monkeypatch.setenv('SFU_APP_SECRET', 'other-secret-value-0123456789')
    settings = load_settings(tmp_path)
    assert 'very-secret-value' not in repr(settings) and 'very-secret-value' not in str(settings)
    assert 'other-secret-value-0123456789' not in repr(settings)
    assert not settings.sfu_app_id_generated


@pytest.mark.parametrize(
    ('variable', 'value'),
    [
        ('MAX_WEBCAM_BITRATE', 'fast'),
        ('MAX_WEBCAM_BITRATE', '0'),
        ('MAX_WEBCAM_FRAMERATE', '-3'),
        ('PORT', '70000'),
        ('EXPERIMENTAL_SIMULCAST_ENABLED', 'perhaps'),
        ('SFU_ICE_HOSTS', 'localhost'),
        ('ICE_SERVERS', 'http://example.invalid'),
        ('ICE_SERVERS', '[{"urls": 3'),
        ('CALLS_API_URL', 'rtc.example'),
        ('SFU_APP_ID', 'has space'),
        ('TLS_CERTFILE', '/nonexistent/cert.pem'),
    ],
)
def test_bad_value_is_rejected_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    if variable == 'TLS_CERTFILE':
        monkeypatch.setenv('TLS_KEYFILE', '/nonexistent/key.pem')
    with pytest.raises(SettingsError, match=variable):
        load_settings(tmp_path)


@pytest.mark.parametrize('missing', ['CALLS_APP_SECRET', 'CALLS_APP_ID'])
def test_calls_credentials_come_in_pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    other = 'CALLS_APP_ID' if missing == 'CALLS_APP_SECRET' else 'CALLS_APP_SECRET'
    monkeypatch.setenv(other, 'value')
    with pytest.raises(SettingsError, match='CALLS_APP_ID and CALLS_APP_SECRET'):
        load_settings(tmp_path)


def test_ice_settings_accept_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('SFU_ICE_HOSTS', '127.0.0.1, ::1')
    monkeypatch.setenv('ICE_SERVERS', 'stun:stun.example:3478, turn:turn.example:3478?transport=udp')
    settings = load_settings(tmp_path)
    assert settings.sfu_ice_hosts == ['127.0.0.1', '::1']
    assert [s['urls'] for s in settings.ice_servers] == [
        ['stun:stun.example:3478'],
        ['turn:turn.example:3478?transport=udp'],
    ]
    monkeypatch.setenv('ICE_SERVERS', '[{"urls": "turn:t.example", "username": "u", "credential": "c"}]')
    assert load_settings(tmp_path).ice_servers == [{'urls': ['turn:t.example'], 'username': 'u', 'credential': 'c'}]


def test_simulated_loss_is_off_by_default_and_accepts_a_fraction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(tmp_path).sfu_simulate_loss == 0.0
    for value, expected in (('0', 0.0), ('0.08', 0.08), ('0.5', 0.5), ('', 0.0)):
        monkeypatch.setenv('SFU_SIMULATE_LOSS', value)
        assert load_settings(tmp_path).sfu_simulate_loss == expected


@pytest.mark.parametrize('value', ['8%', '8', '0.51', '-0.1', 'nan', 'inf', 'lots'])
def test_simulated_loss_outside_0_to_half_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv('SFU_SIMULATE_LOSS', value)
    with pytest.raises(SettingsError, match=r'SFU_SIMULATE_LOSS: must be a fraction of packets from 0 to 0\.5'):
        load_settings(tmp_path)


def test_simulated_loss_is_refused_with_cloudflare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('CALLS_APP_ID', 'abc')
    monkeypatch.setenv('CALLS_APP_SECRET', 'secret')
    monkeypatch.setenv('SFU_SIMULATE_LOSS', '0.1')
    with pytest.raises(SettingsError, match='SFU_SIMULATE_LOSS works only with the embedded SFU'):
        load_settings(tmp_path)
    monkeypatch.setenv('SFU_SIMULATE_LOSS', '0')
    assert load_settings(tmp_path).uses_cloudflare


@pytest.mark.parametrize('secret', ['weak-pw', 'x7' * 10])
def test_a_weak_sfu_secret_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv('SFU_APP_SECRET', secret)
    with pytest.raises(SettingsError, match='SFU_APP_SECRET: too short') as refused:
        load_settings(tmp_path)
    assert secret not in str(refused.value)


def test_sfu_api_access_defaults_to_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(tmp_path).sfu_api == 'loopback'
    monkeypatch.setenv('SFU_API', 'public')
    assert load_settings(tmp_path).sfu_api == 'public'
    monkeypatch.setenv('SFU_API', 'everyone')
    with pytest.raises(SettingsError, match='SFU_API'):
        load_settings(tmp_path)
