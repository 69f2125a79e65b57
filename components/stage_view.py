"""The meeting room's stage on screen: pinned tiles large, the others beside them (a column, on a wide window) or
below them; every tile keeps its position while the roster changes, and has a pin button.

What is on stage, and in which order, is decided by `rooms.ViewerStage` (pure); this component only reconciles the
tiles with it. `RemoteAudio` is the hidden row of audio-only tiles: one per microphone this page may hear."""

from __future__ import annotations

from collections.abc import Callable

from nicegui import ui

from components.testid import testid
from components.video_tile import TileView, VideoTile, grid_columns
from rooms import Participant, Room, Source, visible_tracks

SIDE_BY_SIDE_PX = 900  # from this window width, the unpinned tiles form a column beside the pinned ones
NARROW_PX = 600


class StageView:
    """The pinned grid and the grid of the other tiles on stage; `show()` reconciles them with a roster."""

    def __init__(self, on_pin: Callable[[str], None]) -> None:
        self.on_pin = on_pin
        self.tiles: dict[str, VideoTile] = {}
        self.pins: dict[str, ui.button] = {}
        self.box = testid(ui.element('div'), 'stage').classes('grow min-w-0 w-full')
        with self.box:
            self.pinned_grid = testid(ui.element('div'), 'pinned-grid')
            self.grid = testid(ui.element('div'), 'tile-grid')

    def show(self, roster: list[str], views: dict[str, TileView], pinned: set[str], width: float) -> None:
        """Show the tiles of `roster` (keys of `views`, in stage order); those in `pinned` large."""
        for key in [k for k in self.tiles if k not in roster]:
            self.tiles.pop(key).delete()
            self.pins.pop(key, None)
        on_pin = [key for key in roster if key in pinned]
        loose = [key for key in roster if key not in pinned]
        for box, keys in ((self.pinned_grid, on_pin), (self.grid, loose)):
            for index, key in enumerate(keys):
                if key not in self.tiles:
                    self.tiles[key] = self._new_tile(key, views[key])
                self.tiles[key].show(views[key])
                children = box.default_slot.children
                if index >= len(children) or children[index] is not self.tiles[key]:
                    self.tiles[key].move(box, target_index=index)
                self.pins[key].props(f'color={"orange" if key in pinned else "white"}')
        self._layout(len(on_pin), len(loose), width)

    def _new_tile(self, key: str, view: TileView) -> VideoTile:
        with self.grid:
            tile = VideoTile(key, view)
        with tile:
            pin = ui.button(icon='push_pin', on_click=lambda: self.on_pin(key))
            pin.props('round dense flat color=white').classes('absolute top-2 right-2').tooltip('Pin / unpin this tile')
            self.pins[key] = testid(pin, 'tile-pin')
        return tile

    def _layout(self, pinned: int, loose: int, width: float) -> None:
        """Pinned tiles large, the rest beside them (a column) on wide windows or below them on narrow ones."""
        side_by_side = pinned > 0 and loose > 0 and width >= SIDE_BY_SIDE_PX
        self.box.style(replace=f'display: flex; gap: 12px; flex-direction: {"row" if side_by_side else "column"}')
        self.pinned_grid.set_visibility(pinned > 0)
        self.pinned_grid.style(replace=_grid(_columns(pinned, width), 'flex: 3 1 0; min-width: 0'))
        if side_by_side:
            self.grid.style(replace=_grid(1, 'flex: 1 1 0; min-width: 0; align-content: start'))
        else:
            self.grid.style(replace=_grid(_columns(loose, width), ''))


def _grid(columns: int, extra: str) -> str:
    return f'display: grid; gap: 12px; grid-template-columns: repeat({columns}, minmax(0, 1fr)); {extra}'


def _columns(count: int, width: float) -> int:
    """One column on a narrow window, else by count (the stage holds at most 9)."""
    return 1 if width < NARROW_PX else grid_columns(count)


class RemoteAudio:
    """A hidden box of audio-only tiles, one per microphone `me` may hear in `room` (marked `marker` for tests)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.tiles: dict[str, VideoTile] = {}
        self.box = ui.element('div').classes('hidden')

    def show(self, me: Participant, room: Room) -> None:
        sounds = {
            t.key: TileView(label=t.label, audio_key=f'remote:{t.key}', muted=not t.enabled)
            for t in visible_tracks(me, room)
            if t.source is Source.MIC
        }
        for key in [k for k in self.tiles if k not in sounds]:
            self.tiles.pop(key).delete()
        for key, view in sounds.items():
            if key in self.tiles:
                self.tiles[key].show(view)
            else:
                with self.box:
                    self.tiles[key] = testid(VideoTile(key, view), self.marker)
