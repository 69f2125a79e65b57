"""The "Unstable connection" toast through NiceGUI's simulated user: the browser's `quality` events become toasts."""

from nicegui.testing import User

from components.media_session import MediaSession


async def enter_meeting(user: User, room: str) -> None:
    await user.open('/')
    user.find(marker='display-name').type('Dr. Ada')
    user.find(marker='room-name').type(room)
    user.find(marker='join-room').click()
    await user.should_see(marker='room-title')
    await user.open(f'/{room}/room')


async def test_a_degraded_connection_is_toasted_and_so_is_its_recovery(user: User) -> None:
    await enter_meeting(user, 'toast-room')
    session = user.find(kind=MediaSession)
    await user.should_not_see('Unstable connection — call quality may be affected.')

    session.trigger('quality', {'degraded': True, 'inboundLoss': 0.123, 'outboundLoss': 0.0})
    await user.should_see('Unstable connection — call quality may be affected.')
    await user.should_not_see('Connection recovered')

    session.trigger('quality', {'degraded': False, 'inboundLoss': 0.01, 'outboundLoss': 0.0})
    await user.should_see('Connection recovered')


async def test_a_malformed_event_shows_nothing(user: User) -> None:
    await enter_meeting(user, 'toast-room-2')
    session = user.find(kind=MediaSession)
    session.trigger('quality', 'nonsense')
    session.trigger('quality', {'degraded': 'yes'})
    await user.should_not_see('Unstable connection — call quality may be affected.')
    await user.should_not_see('Connection recovered')
