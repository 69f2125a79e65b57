"""A participant tile (video or avatar, audio, label, connecting spinner, connection bars) whose video opens the
page's stats panel (components/stats_panel.py)."""

from __future__ import annotations

from dataclasses import dataclass

from nicegui import ui

from components.stats_panel import StatsPanel

JS_MODULES = {'orange-media': 'js'}


@dataclass(frozen=True, kw_only=True, slots=True)
class TileView:
    """What a tile shows: track keys refer to the page's trackStore (`local:<key>` or `remote:<tile key>`)."""

    label: str
    video_key: str | None = None
    audio_key: str | None = None
    muted: bool = False
    mirrored: bool = False
    speaking: bool = False
    hand: bool = False
    fit: str = 'cover'  # 'contain' for screens: never crop a shared document


def grid_columns(count: int) -> int:
    """Columns for a grid of `count` tiles: 1, then 2 up to four tiles, 3 up to nine, else 4."""
    return 1 if count <= 1 else 2 if count <= 4 else 3 if count <= 9 else 4


class VideoTile(ui.element, component='video_tile.js', esm=JS_MODULES):
    """Shows the track published under `video_key` (e.g. `remote:<tile>` or `local:camera`) in the trackStore."""

    def __init__(self, tile_key: str, view: TileView) -> None:
        super().__init__()
        self.tile_key = tile_key
        self._props['tileKey'] = tile_key
        self._props.update(self._as_props(view))
        self.props('data-testid="tile"')
        self.on('stats', self._open_stats)

    def _open_stats(self) -> None:
        """The tile's stats button: the page's panel shows this tile's video (remote or local preview)."""
        video_key = self._props.get('videoKey')
        if isinstance(video_key, str) and video_key:
            StatsPanel.of(self.client).open(video_key, str(self._props.get('label') or ''))

    def show(self, view: TileView) -> None:
        """Change what the tile shows; sends an update only when something changed."""
        new = self._as_props(view)
        if any(self._props.get(k) != v for k, v in new.items()):
            self._props.update(new)
            self.update()

    @staticmethod
    def _as_props(view: TileView) -> dict[str, object]:
        return {
            'label': view.label,
            'videoKey': view.video_key,
            'audioKey': view.audio_key,
            'muted': view.muted,
            'mirrored': view.mirrored,
            'speaking': view.speaking,
            'hand': view.hand,
            'fit': view.fit,
        }
