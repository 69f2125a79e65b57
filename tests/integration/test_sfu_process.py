"""SFU_PROCESS=separate: the embedded SFU in its own process, reached over loopback with the same CallsClient."""

from __future__ import annotations

import asyncio
import os

import av
import pytest

from media.calls_client import CallsClient
from media.sfu import process as sfu_process

from .conftest import APP_ID, APP_SECRET
from .sfu_peers import first_frame, new_subscriber, publish, pull, track_for


def test_the_child_reads_its_configuration_from_the_environment() -> None:
    env = sfu_process.child_env(
        app_id=APP_ID,
        app_secret=APP_SECRET,
        ice_hosts=['127.0.0.1'],
        ice_servers=[{'urls': ['turn:turn.example:3478'], 'username': 'u', 'credential': 'c'}],
        media_timeout_s=12.5,
        simulate_loss=0.1,
    )
    config = sfu_process.config_from_env(env)
    assert (config.app_id, config.app_secret, config.ice_hosts) == (APP_ID, APP_SECRET, ['127.0.0.1'])
    assert config.media_timeout_s == 12.5 and config.simulate_loss == 0.1
    assert config.ice_servers[0].urls == ['turn:turn.example:3478'] and config.ice_servers[0].username == 'u'


async def test_media_flows_through_a_separate_sfu_process_and_it_exits_with_its_parent() -> None:
    env = sfu_process.child_env(
        app_id=APP_ID,
        app_secret=APP_SECRET,
        ice_hosts=['127.0.0.1'],
        ice_servers=[],
        media_timeout_s=30,
        simulate_loss=0,
    )
    child = await asyncio.get_running_loop().run_in_executor(None, sfu_process.start, env)
    try:
        assert child.pid != os.getpid()
        client = CallsClient(child.http, APP_ID, APP_SECRET)
        publisher = await publish(client)
        subscriber = await new_subscriber(client)
        response = await pull(client, subscriber, publisher.session_id, ['v', 'a'])
        video_mid, audio_mid = ((t.mid or '') for t in response.tracks or [])
        video = await first_frame(await track_for(subscriber, video_mid))
        audio = await first_frame(await track_for(subscriber, audio_mid))
        assert isinstance(video, av.VideoFrame) and video.width == 160
        assert isinstance(audio, av.AudioFrame) and audio.samples > 0
        await publisher.pc.close()
        await subscriber.pc.close()
    finally:
        await child.close()  # closes the child's stdin: it shuts down on its own
    assert child.process.returncode is not None


def test_sfu_process_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from settings import Settings

    monkeypatch.setenv('SFU_PROCESS', 'separate')
    assert Settings(_env_file=None).sfu_process == 'separate'  # type: ignore[call-arg]
    monkeypatch.delenv('SFU_PROCESS')
    assert Settings(_env_file=None).sfu_process == 'inline'  # type: ignore[call-arg]
    monkeypatch.setenv('SFU_PROCESS', 'elsewhere')
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]
