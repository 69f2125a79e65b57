"""Who may see and hear whom: the original's role rules as pure functions, enforced on every pull."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rooms.model import InvalidInputError, Kind, Participant, Role, Source, TrackLocator

if TYPE_CHECKING:
    from rooms.room import Room

# (viewer role, publisher role) -> the sources the viewer receives. Pairs not listed see nothing:
# technicians do not see each other, hospitals do not see each other, stations and regular users never meet.
VISIBLE_SOURCES: dict[tuple[Role, Role], frozenset[Source]] = {
    (Role.HOSPITAL, Role.TECHNICIAN): frozenset({Source.CAMERA, Source.MIC}),
    (Role.TECHNICIAN, Role.HOSPITAL): frozenset({Source.CAMERA, Source.MIC, Source.SCREEN}),
    (Role.REGULAR, Role.REGULAR): frozenset({Source.CAMERA, Source.MIC, Source.SCREEN}),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class VisibleTrack:
    """A track a viewer may pull, with what its tile shows and a key that stays stable across renders."""

    publisher_id: str
    kind: Kind
    source: Source
    locator: TrackLocator
    label: str
    key: str
    enabled: bool = True
    device_id: str | None = None


def visible_sources(viewer: Participant, publisher: Participant) -> frozenset[Source]:
    """The sources of `publisher` that `viewer` receives (empty for oneself and for unrelated roles)."""
    if viewer.id == publisher.id:
        return frozenset()
    return VISIBLE_SOURCES.get((viewer.role, publisher.role), frozenset())


def can_see(viewer: Participant, publisher: Participant) -> bool:
    """True when `viewer` is shown video from `publisher`."""
    return bool(visible_sources(viewer, publisher) & {Source.CAMERA, Source.SCREEN})


def can_hear(viewer: Participant, publisher: Participant) -> bool:
    """True when `viewer` hears `publisher`'s microphone."""
    return Source.MIC in visible_sources(viewer, publisher)


def tile_key(publisher_id: str, source: Source, device_id: str | None = None) -> str:
    """The stable tile key of a track: "pid:source" or, for a hospital camera, "pid:camera:deviceId"."""
    return f'{publisher_id}:{source}' if device_id is None else f'{publisher_id}:{source}:{device_id}'


def published_tracks(publisher: Participant) -> list[VisibleTrack]:
    """Every track `publisher` offers to viewers (before role rules): the rules below filter this list."""
    pid, name = publisher.id, publisher.name
    tracks: list[VisibleTrack] = []
    if publisher.mic is not None:
        tracks.append(
            VisibleTrack(
                publisher_id=pid,
                kind=Kind.AUDIO,
                source=Source.MIC,
                locator=publisher.mic.locator,
                label=name,
                key=tile_key(pid, Source.MIC),
                enabled=publisher.mic.enabled,
            )
        )
    if publisher.camera is not None:
        tracks.append(
            VisibleTrack(
                publisher_id=pid,
                kind=Kind.VIDEO,
                source=Source.CAMERA,
                locator=publisher.camera.locator,
                label=name,
                key=tile_key(pid, Source.CAMERA),
                enabled=publisher.camera.enabled,
            )
        )
    # A disabled hospital camera is a privacy switch: it is not offered at all (the original kept a frozen tile).
    tracks.extend(
        VisibleTrack(
            publisher_id=pid,
            kind=Kind.VIDEO,
            source=Source.CAMERA,
            locator=feed.locator,
            label=f'{name} — {feed.label}',
            key=tile_key(pid, Source.CAMERA, feed.device_id),
            device_id=feed.device_id,
        )
        for feed in publisher.cameras
        if feed.enabled and feed.locator is not None
    )
    # The screen is offered only while really shared (the original showed a phantom "Screen" tile).
    if publisher.screen is not None and publisher.screen.enabled:
        tracks.append(
            VisibleTrack(
                publisher_id=pid,
                kind=Kind.VIDEO,
                source=Source.SCREEN,
                locator=publisher.screen.locator,
                label=f'{name} — Screen',
                key=tile_key(pid, Source.SCREEN),
            )
        )
    return tracks


def tracks_visible_from(viewer: Participant, publisher: Participant) -> list[VisibleTrack]:
    """The tracks of `publisher` that `viewer` may pull."""
    sources = visible_sources(viewer, publisher)
    return [track for track in published_tracks(publisher) if track.source in sources]


def visible_participants(viewer: Participant, room: Room) -> list[Participant]:
    """The other participants `viewer` sees or hears, in join order (e.g. the hospital's technician grid)."""
    return [other for other in room.participants.values() if visible_sources(viewer, other)]


def visible_tracks(viewer: Participant, room: Room) -> list[VisibleTrack]:
    """Every track in `room` that `viewer` may pull, in join order, then mic, camera(s), screen."""
    tracks: list[VisibleTrack] = []
    for publisher in visible_participants(viewer, room):
        tracks.extend(tracks_visible_from(viewer, publisher))
    return tracks


def audience(publisher: Participant, room: Room) -> list[Participant]:
    """The participants in `room` that receive at least one of `publisher`'s sources."""
    return [viewer for viewer in room.participants.values() if visible_sources(viewer, publisher)]


def may_pull(viewer: Participant | str, room: Room, locator: TrackLocator | str) -> bool:
    """True when `viewer` (a participant of `room`, or its id) may pull `locator`, published here by someone it sees.

    A viewer not in the room, a stale participant object and a malformed locator are all refused.
    """
    member = room.participants.get(viewer if isinstance(viewer, str) else viewer.id)
    if member is None or (not isinstance(viewer, str) and member is not viewer):
        return False
    if isinstance(locator, str):
        try:
            locator = TrackLocator.parse(locator)
        except InvalidInputError:
            return False
    return any(track.locator == locator for track in visible_tracks(member, room))
