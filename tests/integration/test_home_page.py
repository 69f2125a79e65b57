"""The home page flow through NiceGUI's simulated user (no browser)."""

import re

from nicegui.testing import User

from pages.home import random_room_name


async def test_name_and_new_room_lead_to_the_lobby(user: User) -> None:
    await user.open('/')
    user.find(marker='display-name').type('Dr. Ada')
    user.find(marker='new-room').click()
    await user.should_see(marker='room-title')
    title = user.find(marker='room-title').elements.pop().text
    assert re.fullmatch(r'[a-z]+-[a-z]+-\d{4}', title)
    await user.should_see('Dr. Ada')


async def test_a_name_is_required(user: User) -> None:
    await user.open('/')
    user.find(marker='new-room').click()
    await user.should_see('Enter your name')
    await user.should_not_see(marker='room-title')


async def test_join_by_name_normalises_spaces(user: User) -> None:
    await user.open('/')
    user.find(marker='display-name').type('Tech Tom')
    user.find(marker='room-name').type('MRI suite 3')
    user.find(marker='join-room').click()
    await user.should_see('MRI-suite-3')


async def test_join_rejects_a_name_that_breaks_urls(user: User) -> None:
    await user.open('/')
    user.find(marker='display-name').type('Tech Tom')
    user.find(marker='room-name').type('../admin?x=1')
    user.find(marker='join-room').click()
    await user.should_not_see(marker='room-title')
    assert user.find(marker='home-error').elements.pop().text


async def test_the_name_is_remembered_per_browser(user: User) -> None:
    await user.open('/')
    user.find(marker='display-name').type('Nurse Kim')
    user.find(marker='new-room').click()
    await user.should_see(marker='room-title')
    await user.open('/')
    assert user.find(marker='display-name').elements.pop().value == 'Nurse Kim'


async def test_invalid_room_url_explains(user: User) -> None:
    await user.open('/bad.name')
    await user.should_see(marker='room-invalid')


def test_random_room_names_are_readable_and_valid() -> None:
    from rooms import normalise_room_name

    names = {random_room_name() for _ in range(50)}
    assert len(names) > 40
    for name in names:
        assert normalise_room_name(name) == name
        assert re.fullmatch(r'[a-z]+-[a-z]+-\d{4}', name)
