"""Configuration: environment, `.env` and the original's `.dev.vars`, with the original's variable names.

Precedence (highest first): process environment, `.env`, `.dev.vars`, defaults. Invalid values fail at start-up
with a `SettingsError` naming the variable.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_CALLS_API_URL = 'https://rtc.live.cloudflare.com/v1'
MAX_SIMULATED_LOSS = 0.5  # mirrors media.sfu.config.MAX_SIMULATED_LOSS
ICE_URL_SCHEMES = ('stun:', 'stuns:', 'turn:', 'turns:')


MIN_SECRET_CHARS = 22  # a base64url secret of 22 characters carries 128 bits
MIN_INVITE_SECRET_CHARS = 32  # HS256 wants a key of at least 32 bytes (RFC 7518 section 3.2)


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable."""


class Settings(BaseSettings):
    """Every knob of the app. Field names match the environment variables case-insensitively."""

    model_config = SettingsConfigDict(
        env_file=('.dev.vars', '.env'),
        env_file_encoding='utf-8',
        extra='ignore',
        case_sensitive=False,
    )

    # Cloudflare Realtime SFU ("Calls"); when both are set the app uses it instead of the embedded SFU.
    calls_app_id: str | None = None
    calls_app_secret: SecretStr | None = None
    calls_api_url: str = DEFAULT_CALLS_API_URL
    turn_service_id: str | None = None
    turn_service_token: SecretStr | None = None

    # Camera caps, honoured by every camera (the original's hospital page ignored them).
    max_webcam_bitrate: int = Field(default=1_200_000, gt=0)
    max_webcam_framerate: int = Field(default=24, gt=0, le=120)
    max_webcam_quality_level: int = Field(default=1080, ge=90, le=4320)
    experimental_simulcast_enabled: bool = False

    # Ours.
    host: str = '127.0.0.1'
    port: int = Field(default=8080, ge=1, le=65535)
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    storage_secret: SecretStr | None = None
    sfu_app_id: str = Field(default_factory=lambda: secrets.token_hex(16))
    sfu_app_secret: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))
    sfu_ice_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ice_servers: Annotated[list[dict[str, Any]], NoDecode] = Field(default_factory=list)
    log_level: str = 'INFO'
    log_format: Literal['text', 'json'] = 'text'  # json: one object per line with room and participant fields
    # Diagnostics: the embedded SFU drops this fraction of the packets it forwards to each subscriber.
    sfu_simulate_loss: float = 0.0
    # Seconds without media after which the embedded SFU drops a published track (Cloudflare's fixed value is 30).
    sfu_media_timeout: float = Field(default=30.0, gt=0, le=3600)
    # Where the embedded SFU runs: `inline` (in the app's process and event loop) or `separate` (its own process on
    # 127.0.0.1, reached with the same Calls client; the app's /sfu/v1 is then not served).
    sfu_process: Literal['inline', 'separate'] = 'inline'
    # Who may call the embedded SFU's Calls API at /sfu/v1 (the app itself always reaches it in-process).
    sfu_api: Literal['off', 'loopback', 'public'] = 'loopback'
    # Who gets into a room: `invite` (signed role invites and a waiting room the host admits from) or `open` (the
    # original: anyone with the room's address, in the role of the page they open; for demos and tests).
    room_access: Literal['invite', 'open'] = 'invite'
    # Signs role invites (HS256 JWT); when unset, one is generated once and kept in .nicegui/invite-secret (0600).
    invite_secret: SecretStr | None = None
    # The audit trail (issue 11): its SQLite file (default: .nicegui/audit.db) and the key that hashes client
    # addresses (default: generated once into .nicegui/audit-salt, 0600).
    audit_db: Path | None = None
    audit_salt: SecretStr | None = None

    @field_validator('calls_app_id', 'turn_service_id', 'audit_db', 'audit_salt', mode='before')
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator('calls_api_url')
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(('http://', 'https://')):
            raise ValueError('must be an http:// or https:// URL')
        return value.rstrip('/')

    @field_validator('sfu_app_id')
    @classmethod
    def _check_app_id(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c in '-_' for c in value):
            raise ValueError('must be non-empty letters, digits, "-" or "_"')
        return value

    @field_validator('room_access', mode='before')
    @classmethod
    def _lower_access(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator('invite_secret', mode='before')
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator('invite_secret')
    @classmethod
    def _check_invite_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_INVITE_SECRET_CHARS:
            raise ValueError(
                f'too short: at least {MIN_INVITE_SECRET_CHARS} characters, e.g. python3 -c '
                '"import secrets; print(secrets.token_urlsafe(32))"'
            )
        return value

    @field_validator('sfu_app_secret')
    @classmethod
    def _check_secret_strength(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(
                f'too short: at least {MIN_SECRET_CHARS} characters (128 bits), e.g. python3 -c '
                '"import secrets; print(secrets.token_urlsafe(32))"'
            )
        return value

    @field_validator('sfu_ice_hosts', mode='before')
    @classmethod
    def _parse_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(',') if part.strip()]
        for host in value:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError(f'{host!r} is not an IP address') from None
        return value

    @field_validator('sfu_simulate_loss', mode='before')
    @classmethod
    def _check_loss(cls, value: Any) -> Any:
        text = str(value).strip() if value is not None else ''
        if text == '':
            return 0.0
        try:
            fraction = float(text)
        except ValueError:
            fraction = -1.0
        if not 0.0 <= fraction <= MAX_SIMULATED_LOSS:  # also rejects nan
            raise ValueError(
                f'must be a fraction of packets from 0 to {MAX_SIMULATED_LOSS} (e.g. 0.08 for 8 %), got {value!r}'
            )
        return fraction

    @field_validator('ice_servers', mode='before')
    @classmethod
    def _parse_ice_servers(cls, value: Any) -> Any:
        """Accept a JSON list of RTCIceServer objects, or a comma-separated list of stun:/turn: URLs."""
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return []
            if text.startswith('['):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as error:
                    raise ValueError(f'invalid JSON: {error}') from None
            else:
                value = [{'urls': [url.strip()]} for url in text.split(',') if url.strip()]
        if not isinstance(value, list):
            raise ValueError('must be a list')
        servers = []
        for server in value:
            if not isinstance(server, dict) or 'urls' not in server:
                raise ValueError('each entry needs "urls"')
            urls = [server['urls']] if isinstance(server['urls'], str) else list(server['urls'])
            if not urls or not all(isinstance(u, str) and u.startswith(ICE_URL_SCHEMES) for u in urls):
                raise ValueError(f'URLs must start with one of {", ".join(ICE_URL_SCHEMES)}')
            servers.append({**server, 'urls': urls})
        return servers

    @model_validator(mode='after')
    def _check_pairs(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError('TLS_CERTFILE and TLS_KEYFILE must be set together')
        for name in ('tls_certfile', 'tls_keyfile'):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f'{name.upper()}: file not found: {path}')
        if bool(self.calls_app_id) != bool(self.calls_app_secret and self.calls_app_secret.get_secret_value()):
            raise ValueError('CALLS_APP_ID and CALLS_APP_SECRET must be set together')
        if bool(self.turn_service_id) != bool(self.turn_service_token and self.turn_service_token.get_secret_value()):
            raise ValueError('TURN_SERVICE_ID and TURN_SERVICE_TOKEN must be set together')
        if self.sfu_simulate_loss and self.uses_cloudflare:
            raise ValueError('SFU_SIMULATE_LOSS works only with the embedded SFU: unset it or CALLS_APP_ID')
        return self

    @property
    def uses_cloudflare(self) -> bool:
        """True when media goes through the real Cloudflare Realtime SFU."""
        return bool(self.calls_app_id)

    @property
    def tls_enabled(self) -> bool:
        """True when the app serves https."""
        return self.tls_certfile is not None

    @property
    def sfu_app_id_generated(self) -> bool:
        """True when SFU_APP_ID/SFU_APP_SECRET were not configured and are random for this run."""
        return 'sfu_app_secret' not in self.model_fields_set


def load_settings(env_dir: Path | None = None, **overrides: Any) -> Settings:
    """Read settings; `.env` and `.dev.vars` are looked for in `env_dir`, else `$ORANGE_CONFIG_DIR`, else the cwd."""
    base = env_dir if env_dir is not None else Path(os.environ.get('ORANGE_CONFIG_DIR') or os.getcwd())
    try:
        return Settings(_env_file=(base / '.dev.vars', base / '.env'), **overrides)  # type: ignore[call-arg]
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        variable = '.'.join(str(part) for part in item['loc']).upper() or 'configuration'
        message = item['msg'].removeprefix('Value error, ')
        lines.append(f'{variable}: {message}' if item['loc'] else message)
    return 'Invalid configuration: ' + '; '.join(lines)
