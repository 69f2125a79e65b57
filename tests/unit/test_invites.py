"""Signed role invites: mint and verify (expiry, forgery, other room, wrong role, clock skew), and the kept secret."""

from __future__ import annotations

import stat
from pathlib import Path

import jwt
import pytest

from components.invites import invite_path, kept_secret, mint, verify
from rooms.grants import (
    CLOCK_SKEW,
    Grant,
    GrantError,
    GrantProblem,
    GrantRole,
    grant_from_claims,
    new_grant,
)
from rooms.model import InvalidInputError, Role

SECRET = 'test-invite-secret-0123456789abcdef'
NOW = 1_800_000_000.0
ROOM = 'k3j5qz7m2a4b6c8d0e2f4g6h'


def problem(call) -> GrantProblem:  # type: ignore[no-untyped-def]
    with pytest.raises(GrantError) as caught:
        call()
    return caught.value.problem


def test_a_minted_invite_verifies_with_its_claims() -> None:
    token, grant = mint(SECRET, room=ROOM, role='technician', ttl=8 * 3600, name='Tech Tom', now=NOW)
    verified = verify(SECRET, token, room=ROOM, page='technician', now=NOW + 60)
    assert verified == grant
    assert verified.role is GrantRole.TECHNICIAN and verified.name == 'Tech Tom' and verified.exp == NOW + 8 * 3600
    assert verified.room_role('technician') is Role.TECHNICIAN
    assert not verified.admin
    claims = jwt.decode(
        token,
        SECRET,
        algorithms=['HS256'],
        audience='orange-telehealth',
        options={'verify_iat': False, 'verify_nbf': False},
    )
    assert claims['room'] == ROOM and claims['role'] == 'technician' and claims['jti'] == grant.jti
    assert claims['video'] == {
        'room': ROOM,
        'roomJoin': True,
        'canPublish': True,
        'canSubscribe': True,
        'canPublishSources': ['camera', 'microphone'],
        'roomAdmin': False,
    }
    assert claims['context'] == {'user': {'moderator': False, 'name': 'Tech Tom'}}
    assert jwt.get_unverified_header(token)['alg'] == 'HS256'


def test_every_invite_has_its_own_id() -> None:
    ids = {mint(SECRET, room=ROOM, role='guest', ttl=60, now=NOW)[1].jti for _ in range(20)}
    assert len(ids) == 20


def test_an_expired_invite_is_refused_beyond_the_clock_skew() -> None:
    token, _ = mint(SECRET, room=ROOM, role='technician', ttl=3600, now=NOW)
    assert verify(SECRET, token, room=ROOM, now=NOW + 3600 + CLOCK_SKEW - 1).role is GrantRole.TECHNICIAN  # skew
    assert problem(lambda: verify(SECRET, token, room=ROOM, now=NOW + 3600 + CLOCK_SKEW + 1)) is GrantProblem.EXPIRED
    assert problem(lambda: verify(SECRET, token, room=ROOM, now=NOW + 3601, leeway=0)) is GrantProblem.EXPIRED


def test_a_token_from_a_fast_clock_is_accepted_within_the_skew_only() -> None:
    token, _ = mint(SECRET, room=ROOM, role='technician', ttl=3600, now=NOW)
    assert verify(SECRET, token, room=ROOM, now=NOW - CLOCK_SKEW + 1).jti  # the minting clock was 59 s ahead
    assert problem(lambda: verify(SECRET, token, room=ROOM, now=NOW - CLOCK_SKEW - 5)) is GrantProblem.NOT_YET


def test_forged_and_malformed_tokens_are_invalid() -> None:
    token, _ = mint(SECRET, room=ROOM, role='technician', ttl=3600, now=NOW)
    assert (
        problem(lambda: verify('another-secret-0123456789abcdef-0123', token, room=ROOM, now=NOW))
        is GrantProblem.INVALID
    )
    header, _payload, signature = token.split('.')
    forged_payload = jwt.encode(
        {**jwt.decode(token, options={'verify_signature': False}), 'role': 'hospital'}, 'x' * 32, algorithm='HS256'
    ).split('.')[1]
    assert problem(lambda: verify(SECRET, f'{header}.{forged_payload}.{signature}', room=ROOM, now=NOW)) is (
        GrantProblem.INVALID
    )
    unsigned = jwt.encode({'room': ROOM, 'role': 'host', 'jti': 'x', 'exp': NOW + 60}, None, algorithm='none')
    for bad in ('', 'nonsense', 'a.b.c', unsigned, token[:-3], 'x' * 5000):
        assert problem(lambda bad=bad: verify(SECRET, bad, room=ROOM, now=NOW)) is GrantProblem.INVALID
    missing_jti = jwt.encode({'room': ROOM, 'role': 'guest', 'exp': NOW + 60, 'aud': 'orange-telehealth'}, SECRET)
    assert problem(lambda: verify(SECRET, missing_jti, room=ROOM, now=NOW)) is GrantProblem.INVALID
    bad_role = jwt.encode(
        {'room': ROOM, 'role': 'superuser', 'jti': 'j', 'exp': NOW + 60, 'aud': 'orange-telehealth'}, SECRET
    )
    assert problem(lambda: verify(SECRET, bad_role, room=ROOM, now=NOW)) is GrantProblem.INVALID


def test_an_invite_for_another_room_is_refused() -> None:
    token, _ = mint(SECRET, room='another-room-address', role='technician', ttl=3600, now=NOW)
    assert problem(lambda: verify(SECRET, token, room=ROOM, now=NOW)) is GrantProblem.OTHER_ROOM


def test_an_invite_opens_its_role_page_only_and_the_host_every_page() -> None:
    token, _ = mint(SECRET, room=ROOM, role='technician', ttl=3600, now=NOW)
    for page in ('hospital', 'room'):
        assert problem(lambda page=page: verify(SECRET, token, room=ROOM, page=page, now=NOW)) is (
            GrantProblem.WRONG_ROLE
        )
    grant = verify(SECRET, token, room=ROOM, now=NOW)
    with pytest.raises(GrantError):
        grant.room_role('hospital')
    host_token, _ = mint(SECRET, room=ROOM, role='host', ttl=3600, now=NOW)
    host = verify(SECRET, host_token, room=ROOM, page='hospital', now=NOW)
    assert host.admin and [host.room_role(p) for p in ('hospital', 'technician', 'room')] == [
        Role.HOSPITAL,
        Role.TECHNICIAN,
        Role.REGULAR,
    ]


def test_an_operator_minted_token_with_livekit_or_jitsi_moderation_claims() -> None:
    base = {'room': ROOM, 'role': 'guest', 'jti': 'ext-1', 'exp': NOW + 600, 'iat': NOW, 'aud': 'orange-telehealth'}
    livekit = {**base, 'video': {'room': ROOM, 'roomJoin': True, 'roomAdmin': True}}
    assert verify(SECRET, jwt.encode(livekit, SECRET), room=ROOM, now=NOW).admin
    jitsi = {**base, 'context': {'user': {'moderator': True, 'name': 'Dr Who'}}}
    assert verify(SECRET, jwt.encode(jitsi, SECRET), room=ROOM, now=NOW).admin
    inconsistent = {**base, 'video': {'room': 'elsewhere', 'roomJoin': True}}
    assert problem(lambda: verify(SECRET, jwt.encode(inconsistent, SECRET), room=ROOM, now=NOW)) is (
        GrantProblem.INVALID
    )
    no_join = {**base, 'video': {'room': ROOM, 'roomJoin': False}}
    assert problem(lambda: verify(SECRET, jwt.encode(no_join, SECRET), room=ROOM, now=NOW)) is GrantProblem.INVALID
    wrong_audience = {**base, 'aud': 'someone-else'}
    assert problem(lambda: verify(SECRET, jwt.encode(wrong_audience, SECRET), room=ROOM, now=NOW)) is (
        GrantProblem.INVALID
    )


def test_new_grant_validates_its_inputs() -> None:
    with pytest.raises(InvalidInputError):
        new_grant(room=ROOM, role='admin', jti='j', now=NOW, ttl=60)
    with pytest.raises(InvalidInputError):
        new_grant(room=ROOM, role='guest', jti='j', now=NOW, ttl=0)
    with pytest.raises(InvalidInputError):
        new_grant(room=ROOM, role='guest', jti='j', now=NOW, ttl=10 * 365 * 86400)
    with pytest.raises(InvalidInputError):
        new_grant(room=ROOM, role='guest', jti='j', now=NOW, ttl=60, name='x' * 51)
    grant = new_grant(room=ROOM, role='hospital', jti='j', now=NOW, ttl=60, name='  Ward 7 — MRI bore ')
    assert grant.name == 'Ward 7 — MRI bore'
    assert grant_from_claims(grant.claims(), room=ROOM, page='hospital', now=NOW) == grant


def test_claims_round_trip_every_role() -> None:
    for role in GrantRole:
        grant = Grant(room=ROOM, role=role, jti='j', iat=int(NOW), exp=int(NOW) + 60, title='calm-otter-1234')
        assert grant_from_claims(grant.claims(), room=ROOM, now=NOW) == grant


def test_invite_links_open_the_role_page() -> None:
    token, grant = mint(SECRET, room=ROOM, role='hospital', ttl=60, now=NOW)
    assert invite_path(grant, token) == f'/{ROOM}/hospital?invite={token}'
    token, grant = mint(SECRET, room=ROOM, role='host', ttl=60, now=NOW)
    assert invite_path(grant, token) == f'/{ROOM}?invite={token}'


def test_the_invite_secret_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    assert kept_secret('configured-secret-0123456789', tmp_path) == 'configured-secret-0123456789'
    assert not (tmp_path / 'invite-secret').exists()
    first = kept_secret(None, tmp_path)
    assert len(first) >= 32 and kept_secret(None, tmp_path) == first
    assert stat.S_IMODE((tmp_path / 'invite-secret').stat().st_mode) == 0o600


def test_settings_default_to_invite_access(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from settings import SettingsError, load_settings

    monkeypatch.delenv('ROOM_ACCESS', raising=False)
    monkeypatch.delenv('INVITE_SECRET', raising=False)
    settings = load_settings(tmp_path)
    assert settings.room_access == 'invite' and settings.invite_secret is None
    monkeypatch.setenv('ROOM_ACCESS', 'Open')
    monkeypatch.setenv('INVITE_SECRET', ' ')
    settings = load_settings(tmp_path)
    assert settings.room_access == 'open' and settings.invite_secret is None
    monkeypatch.setenv('ROOM_ACCESS', 'anyone')
    with pytest.raises(SettingsError, match='ROOM_ACCESS'):
        load_settings(tmp_path)
    monkeypatch.setenv('ROOM_ACCESS', 'invite')
    for short in ('short', 'x' * 31):  # HS256 wants a key of at least 32 bytes
        monkeypatch.setenv('INVITE_SECRET', short)
        with pytest.raises(SettingsError, match='INVITE_SECRET'):
            load_settings(tmp_path)


def test_mint_invite_command_prints_a_link_the_app_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from components.invite_cli import main, parse_ttl

    assert [parse_ttl(t) for t in ('90', '30m', '8h', '7d', '2w')] == [90, 1800, 28800, 604800, 1209600]
    for bad in ('0', '8x', '', '999w'):
        with pytest.raises(Exception, match=r'duration|between'):
            parse_ttl(bad)
    monkeypatch.setenv('NICEGUI_STORAGE_PATH', str(tmp_path))
    monkeypatch.setenv('ORANGE_CONFIG_DIR', str(tmp_path))
    monkeypatch.delenv('INVITE_SECRET', raising=False)
    monkeypatch.setenv('AUDIT_DB', str(tmp_path / 'audit.db'))
    argv = ['--room', ROOM, '--role', 'station', '--ttl', '365d', '--name', 'Ward 7 — MRI bore']
    assert main([*argv, '--base-url', 'https://tele.example.org/']) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith(f'https://tele.example.org/{ROOM}/hospital?invite=')
    token = link.split('invite=', 1)[1]
    grant = verify(kept_secret(None, tmp_path), token, room=ROOM, page='hospital')
    assert grant.role is GrantRole.HOSPITAL and grant.name == 'Ward 7 — MRI bore'
    assert main(['--room', '../etc', '--role', 'technician']) == 2
