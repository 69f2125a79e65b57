// Voice activity of the page's own microphone, from the sender's `media-source` audioLevel (no AudioContext, so
// no autoplay-policy gesture is needed). DOM-free. The thresholds are the original's: start above 0.1, keep
// speaking while above 0.02, and stop only after 1 s below it (the hang time bridges the gaps between words).

export const START_LEVEL = 0.1;
export const KEEP_LEVEL = 0.02;
export const HANG_MS = 1000;
export const POLL_MS = 100;

/** Pure state machine: feed (level, nowMs); `update` returns true when `speaking` flipped. */
export class SpeakingDetector {
  constructor({ start = START_LEVEL, keep = KEEP_LEVEL, hangMs = HANG_MS } = {}) {
    this.start = start;
    this.keep = keep;
    this.hangMs = hangMs;
    this.speaking = false;
    this.lastLoud = -Infinity;
  }

  update(level, nowMs) {
    const loud = level >= (this.speaking ? this.keep : this.start);
    if (loud) this.lastLoud = nowMs;
    const speaking = loud || (this.speaking && nowMs - this.lastLoud < this.hangMs);
    const changed = speaking !== this.speaking;
    this.speaking = speaking;
    return changed;
  }
}

/** Poll `sender`'s audio level and call `onChange(speaking)` on every flip; returns a function that stops. */
export function watchSpeaking(sender, onChange, { pollMs = POLL_MS, now = () => performance.now() } = {}) {
  const detector = new SpeakingDetector();
  let stopped = false;
  const poll = async () => {
    if (stopped) return;
    let level = 0;
    try {
      const stats = await sender.getStats();
      for (const report of stats.values()) {
        if (report.type === 'media-source' && report.kind === 'audio') level = report.audioLevel || 0;
      }
    } catch {
      level = 0; // the sender went away: silence, and the caller stops us
    }
    if (stopped) return;
    if (!sender.track || !sender.track.enabled) level = 0;
    if (detector.update(level, now())) onChange(detector.speaking);
    timer = setTimeout(poll, pollMs);
  };
  let timer = setTimeout(poll, pollMs);
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (detector.speaking) onChange(false);
  };
}
