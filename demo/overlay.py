"""The demo's captions: an overlay the demo injects into every page it drives (never part of the product).

Each page shows a role badge (top left), the current caption (bottom centre, kept across page loads in
`sessionStorage`) and a meter of the audio this page hears (its received audio tracks' `audioLevel`)."""

from __future__ import annotations

import json
from typing import Any

_SCRIPT = r"""
(() => {
  const ROLE = __ROLE__;
  const install = () => {
    if (document.getElementById('demo-overlay')) return;
    const root = document.createElement('div');
    root.id = 'demo-overlay';
    root.innerHTML = `
      <div id="demo-badge" style="position: fixed; left: 12px; top: 10px; z-index: 2147483647; pointer-events: none;
           padding: 6px 14px; border-radius: 999px; background: ${ROLE.colour}; color: white;
           font: 600 18px system-ui, sans-serif; box-shadow: 0 2px 8px rgba(0,0,0,.35)">${ROLE.badge}</div>
      <div id="demo-meter" style="position: fixed; right: 12px; top: 10px; z-index: 2147483647; pointer-events: none;
           display: none; align-items: center; gap: 8px; padding: 6px 12px; border-radius: 999px;
           background: rgba(17,24,39,.85); color: white; font: 600 15px system-ui, sans-serif">
        <i class="material-icons" style="font-size: 18px">volume_up</i><span>hearing</span>
        <span style="width: 120px; height: 10px; border-radius: 5px; background: #374151; overflow: hidden">
          <span id="demo-meter-bar" style="display: block; height: 100%; width: 0; background: #22c55e"></span>
        </span>
      </div>
      <div id="demo-caption" data-testid="demo-caption" style="position: fixed; left: 50%; bottom: 86px;
           transform: translateX(-50%); z-index: 2147483647; pointer-events: none; max-width: 88vw;
           padding: 12px 22px; border-radius: 14px; background: rgba(17,24,39,.88); color: white;
           font: 600 20px/1.3 system-ui, sans-serif; text-align: center; box-shadow: 0 4px 16px rgba(0,0,0,.4);
           display: none"></div>`;
    document.body.appendChild(root);
    globalThis.demoCaption = (text) => {
      sessionStorage.setItem('demoCaption', text || '');
      const box = document.getElementById('demo-caption');
      if (!box) return;
      box.textContent = text || '';
      box.style.display = text ? 'block' : 'none';
    };
    globalThis.demoCaption(sessionStorage.getItem('demoCaption') || '');
    // What this page hears: the loudest received audio track, four times a second.
    setInterval(async () => {
      const pull = globalThis.orangeMedia && globalThis.orangeMedia.pcs && globalThis.orangeMedia.pcs.pull;
      const meter = document.getElementById('demo-meter');
      if (!pull || !meter) return;
      let level = null;
      try {
        for (const report of (await pull.getStats()).values()) {
          if (report.type === 'inbound-rtp' && report.kind === 'audio' && typeof report.audioLevel === 'number') {
            level = Math.max(level || 0, report.audioLevel);
          }
        }
      } catch { return; }
      meter.style.display = level === null ? 'none' : 'flex';
      const bar = document.getElementById('demo-meter-bar');
      const shown = level === null ? 0 : Math.min(1, Math.sqrt(level) * 1.6);
      bar.style.width = `${Math.round(shown * 100)}%`;
      bar.style.background = shown > 0.7 ? '#f97316' : '#22c55e';
    }, 250);
  };
  if (document.body) install(); else document.addEventListener('DOMContentLoaded', install);
})();
"""


def overlay_script(badge: str, colour: str) -> str:
    """The init script that puts the overlay on every page of a context."""
    return _SCRIPT.replace('__ROLE__', json.dumps({'badge': badge, 'colour': colour}))


def set_caption(page: Any, text: str) -> None:
    """Show `text` on `page` (and on the pages it loads next in this tab)."""
    page.evaluate(
        "(text) => { sessionStorage.setItem('demoCaption', text); if (globalThis.demoCaption) demoCaption(text); }",
        text,
    )
