"""Fake cameras that look like cameras: each a canvas-drawn scene of its own (colours, the camera's name, a moving
element and a running clock), offered to the page as a real device.

`devices_script(cameras, webcam=..., screen=...)` returns JavaScript for Playwright's `add_init_script`. It overrides
`navigator.mediaDevices.enumerateDevices` (the listed cameras plus the browser's own microphones), `getUserMedia`
(a camera's `canvas.captureStream()` track by `deviceId`; the microphone is Chromium's real fake microphone) and
`getDisplayMedia` (a drawn "scanner console" screen). Everything is generated in the page: nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class Scene:
    """One fake device: its id and label in the device list, what it draws, its two colours and its caption."""

    device_id: str
    label: str
    kind: str  # 'bore', 'console', 'table', 'webcam' or 'screen'
    name: str  # drawn large in the picture
    top: str
    bottom: str


HOSPITAL_CAMERAS = (
    Scene(device_id='demo-cam-bore', label='USB camera A', kind='bore', name='BORE', top='#0b3d91', bottom='#1fa2c4'),
    Scene(
        device_id='demo-cam-console',
        label='USB camera B',
        kind='console',
        name='CONSOLE',
        top='#0f2e1d',
        bottom='#1e7a46',
    ),
    Scene(
        device_id='demo-cam-table',
        label='USB camera C',
        kind='table',
        name='PATIENT TABLE',
        top='#7c2d12',
        bottom='#f59e0b',
    ),
)
TECHNICIAN_WEBCAM = Scene(
    device_id='demo-webcam', label='Laptop webcam', kind='webcam', name='TECH TOM', top='#3b0764', bottom='#a855f7'
)
SCANNER_SCREEN = Scene(
    device_id='demo-screen', label='Screen', kind='screen', name='MRI SUITE 2 — SCANNER CONSOLE', top='', bottom=''
)

WIDTH, HEIGHT, FPS = 640, 360, 15

_SCRIPT = r"""
(() => {
  const CONFIG = __CONFIG__;
  const W = CONFIG.width, H = CONFIG.height, FPS = CONFIG.fps;
  const devices = navigator.mediaDevices;
  if (!devices || devices.__demo) return;
  devices.__demo = true;
  const realGetUserMedia = devices.getUserMedia.bind(devices);
  const realEnumerate = devices.enumerateDevices.bind(devices);
  const canvases = new Map();
  const started = performance.now();

  function clock() {
    const now = new Date();
    const pad = (n) => String(n).padStart(2, '0');
    const tenths = Math.floor(now.getMilliseconds() / 100);
    return `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${tenths}`;
  }

  function frame(ctx, scene, t) {
    if (scene.kind === 'screen') return screen(ctx, scene, t);
    const sky = ctx.createLinearGradient(0, 0, 0, H);
    sky.addColorStop(0, scene.top);
    sky.addColorStop(1, scene.bottom);
    ctx.fillStyle = sky;
    ctx.fillRect(0, 0, W, H);
    ctx.strokeStyle = 'rgba(255,255,255,0.08)';
    ctx.lineWidth = 1;
    for (let x = 0; x < W; x += 40) { ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, H); ctx.stroke(); }
    for (let y = 0; y < H; y += 40) { ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(W, y); ctx.stroke(); }
    ({ bore, console: consoleScene, table, webcam })[scene.kind](ctx, t);
    // The camera's name, a recording dot and a running clock, as a CCTV overlay would show them.
    ctx.fillStyle = 'rgba(0,0,0,0.45)';
    ctx.fillRect(0, 0, W, 44);
    ctx.fillRect(0, H - 36, W, 36);
    ctx.fillStyle = '#ffffff';
    ctx.font = 'bold 28px sans-serif';
    ctx.textBaseline = 'middle';
    ctx.fillText(scene.name, 14, 23);
    ctx.fillStyle = Math.floor(t * 2) % 2 ? '#ef4444' : '#7f1d1d';
    ctx.beginPath(); ctx.arc(W - 24, 22, 8, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = '#ffffff';
    ctx.font = 'bold 22px monospace';
    ctx.textAlign = 'right';
    ctx.fillText(clock(), W - 14, H - 18);
    ctx.font = '16px monospace';
    ctx.textAlign = 'left';
    ctx.fillText(`frame ${Math.floor(t * FPS)}`, 14, H - 18);
  }

  function bore(ctx, t) { // the scanner's bore, the patient table sliding in and out
    ctx.fillStyle = '#e5e7eb';
    ctx.beginPath(); ctx.arc(W / 2, H / 2 + 10, 130, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = '#111827';
    ctx.beginPath(); ctx.arc(W / 2, H / 2 + 10, 82, 0, 2 * Math.PI); ctx.fill();
    const x = W / 2 - 200 + 160 * (0.5 + 0.5 * Math.sin(t * 0.8));
    ctx.fillStyle = '#93c5fd';
    ctx.fillRect(x, H / 2 + 30, 220, 22);
    ctx.fillStyle = '#fde68a';
    ctx.beginPath(); ctx.arc(x + 200, H / 2 + 22, 14, 0, 2 * Math.PI); ctx.fill();
    ctx.strokeStyle = '#22d3ee'; ctx.lineWidth = 4;
    ctx.beginPath(); ctx.arc(W / 2, H / 2 + 10, 100, t * 2, t * 2 + 1.2); ctx.stroke();
  }

  function consoleScene(ctx, t) { // two monitors: a scrolling trace and level bars
    ctx.fillStyle = '#020617';
    ctx.fillRect(40, 70, 330, 200);
    ctx.fillRect(400, 70, 200, 200);
    ctx.strokeStyle = '#4ade80'; ctx.lineWidth = 3;
    ctx.beginPath();
    for (let i = 0; i <= 330; i += 3) {
      const phase = (i / 40 + t * 4) % (2 * Math.PI);
      const spike = Math.abs(phase - 3) < 0.25 ? -60 * Math.cos((phase - 3) * 6) : 0;
      const y = 170 + 18 * Math.sin(i / 17 + t * 3) + spike;
      if (i === 0) ctx.moveTo(40 + i, y); else ctx.lineTo(40 + i, y);
    }
    ctx.stroke();
    for (let b = 0; b < 6; b++) {
      const h = 30 + 120 * (0.5 + 0.5 * Math.sin(t * (1.5 + b * 0.4) + b));
      ctx.fillStyle = b % 2 ? '#38bdf8' : '#facc15';
      ctx.fillRect(415 + b * 30, 255 - h, 20, h);
    }
  }

  function table(ctx, t) { // the table seen from the side, the patient breathing, a light sweeping
    ctx.fillStyle = '#374151';
    ctx.fillRect(70, 230, 500, 26);
    ctx.fillRect(300, 256, 40, 60);
    const breath = 6 * Math.sin(t * 1.6);
    ctx.fillStyle = '#60a5fa';
    ctx.beginPath(); ctx.ellipse(300, 212 - breath / 2, 170, 22 + breath, 0, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = '#fcd34d';
    ctx.beginPath(); ctx.arc(495, 200, 26, 0, 2 * Math.PI); ctx.fill();
    const sweep = 60 + ((t * 120) % 520);
    const light = ctx.createRadialGradient(sweep, 120, 5, sweep, 120, 90);
    light.addColorStop(0, 'rgba(255,255,255,0.55)');
    light.addColorStop(1, 'rgba(255,255,255,0)');
    ctx.fillStyle = light;
    ctx.fillRect(sweep - 90, 30, 180, 180);
  }

  function webcam(ctx, t) { // a person at a desk, nodding
    const y = 190 + 8 * Math.sin(t * 2.2);
    ctx.fillStyle = '#1f2937';
    ctx.beginPath(); ctx.ellipse(W / 2, H + 30, 170, 140, 0, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = '#f5d0a9';
    ctx.beginPath(); ctx.arc(W / 2, y - 40, 62, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = '#111827';
    ctx.fillRect(W / 2 - 36, y - 26, 72, 10);
    ctx.beginPath(); ctx.arc(W / 2, y - 8, 14, 0, Math.PI); ctx.fill();
  }

  function screen(ctx, scene, t) { // the scanner console's screen: a protocol list and a running sequence
    ctx.fillStyle = '#f8fafc'; ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = '#0f172a'; ctx.fillRect(0, 0, W, 46);
    ctx.fillStyle = '#ffffff'; ctx.font = 'bold 20px sans-serif'; ctx.textBaseline = 'middle'; ctx.textAlign = 'left';
    ctx.fillText(scene.name, 14, 23);
    ctx.textAlign = 'right'; ctx.font = 'bold 18px monospace'; ctx.fillText(clock(), W - 14, 23);
    ctx.textAlign = 'left';
    const rows = ['T1 SAG   3:12', 'T2 AX    4:05', 'FLAIR    3:48', 'DWI      1:55', 'T1 +C    3:30'];
    const current = Math.floor(t / 4) % rows.length;
    rows.forEach((row, i) => {
      ctx.fillStyle = i === current ? '#fde68a' : (i % 2 ? '#e2e8f0' : '#f1f5f9');
      ctx.fillRect(20, 66 + i * 40, 360, 34);
      ctx.fillStyle = '#0f172a'; ctx.font = '20px monospace';
      ctx.fillText(`${i === current ? '▶' : ' '} ${row}`, 30, 83 + i * 40);
    });
    const progress = (t % 4) / 4;
    ctx.fillStyle = '#cbd5e1'; ctx.fillRect(20, 282, 600, 22);
    ctx.fillStyle = '#ea580c'; ctx.fillRect(20, 282, 600 * progress, 22);
    ctx.fillStyle = '#0f172a'; ctx.font = '16px sans-serif';
    ctx.fillText(`Sequence ${current + 1} of ${rows.length}: ${Math.round(progress * 100)} %`, 20, 326);
    ctx.strokeStyle = '#0f172a'; ctx.lineWidth = 2; ctx.strokeRect(410, 66, 210, 194);
    ctx.beginPath();
    for (let i = 0; i < 200; i += 2) {
      const y = 163 + 60 * Math.sin(i / 12 + t * 3) * Math.exp(-i / 160);
      if (i === 0) ctx.moveTo(415 + i, y); else ctx.lineTo(415 + i, y);
    }
    ctx.stroke();
  }

  function canvasOf(scene) {
    let entry = canvases.get(scene.device_id);
    if (!entry) {
      const canvas = document.createElement('canvas');
      canvas.width = W; canvas.height = H;
      const ctx = canvas.getContext('2d');
      const draw = () => frame(ctx, scene, (performance.now() - started) / 1000);
      draw();
      setInterval(draw, 1000 / FPS);
      entry = { canvas };
      canvases.set(scene.device_id, entry);
    }
    return entry.canvas;
  }

  function trackOf(scene) {
    const track = canvasOf(scene).captureStream(FPS).getVideoTracks()[0];
    const settings = track.getSettings.bind(track);
    Object.defineProperty(track, 'label', { value: scene.label });
    track.getSettings = () => ({ ...settings(), deviceId: scene.device_id, width: W, height: H, frameRate: FPS });
    return track;
  }

  function wantedId(video) {
    if (!video || video === true || !video.deviceId) return null;
    const id = video.deviceId;
    if (typeof id === 'string') return id;
    return id.exact || id.ideal || null;
  }

  const info = (scene) => ({
    deviceId: scene.device_id, kind: 'videoinput', label: scene.label, groupId: `group-${scene.device_id}`,
    toJSON() { return { deviceId: this.deviceId, kind: this.kind, label: this.label, groupId: this.groupId }; },
  });

  devices.enumerateDevices = async () => {
    const real = await realEnumerate();
    return [...real.filter((d) => d.kind !== 'videoinput'), ...CONFIG.cameras.map(info)];
  };

  devices.getUserMedia = async (constraints = {}) => {
    const tracks = [];
    if (constraints.audio) tracks.push(...(await realGetUserMedia({ audio: constraints.audio })).getAudioTracks());
    if (constraints.video) {
      const id = wantedId(constraints.video);
      const scene = CONFIG.cameras.find((c) => c.device_id === id) || (id ? null : CONFIG.cameras[0]);
      if (!scene) throw new DOMException(`no camera ${id}`, 'NotFoundError');
      tracks.push(trackOf(scene));
    }
    return new MediaStream(tracks);
  };

  if (CONFIG.screen) devices.getDisplayMedia = async () => new MediaStream([trackOf(CONFIG.screen)]);
})();
"""


def devices_script(cameras: tuple[Scene, ...], *, screen: Scene | None = None) -> str:
    """The init script giving a page `cameras` (in this order) and, when given, `screen` to share."""
    config = {
        'width': WIDTH,
        'height': HEIGHT,
        'fps': FPS,
        'cameras': [asdict(scene) for scene in cameras],
        'screen': asdict(screen) if screen else None,
    }
    return _SCRIPT.replace('__CONFIG__', json.dumps(config))
