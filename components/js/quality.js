// Connection quality from WebRTC stats. Pure logic: no DOM, no timers, no clock (every `now` is passed in, in
// milliseconds). MediaClient feeds `QualityMonitor` with its `stats()` once a second; tiles read `qualityStore`, and
// the stats panel (components/stats_panel.js) scores what it reads with the same `score()`.
//
// One scoring for the tile's bars and the stats panel, as LiveKit does it (a simplified ITU-T E-model):
//   effective delay = RTT / 2 + 2 · jitter (ms)
//   delay penalty   = delay / 40 up to 160 ms, then (delay − 120) / 10   (the E-model's knee at 160 ms)
//   loss penalty    = 10 per % of packets lost
//   score           = 100 − delay penalty − loss penalty, clamped to 0..100
//   > 80 excellent, > 40 good, else poor.
// So on a quiet network 2 % loss is still excellent and 6 % is poor; 400 ms of effective delay alone costs 28.
// A tile's loss is smoothed over 5 s, and so are its jitter and the page's RTT to the SFU (from the receiver reports
// on what this page sends: both peer connections go to the same SFU). The page counts as degraded once its inbound
// or outbound loss, smoothed over 2 s, stays above 5 % for 5 s, and as recovered once it stays at or below 5 % for 5 s.
import { createKeyedStore } from './keyed_store.js';

export const LEVELS = [
  ['excellent', 80],
  ['good', 40],
];
export const WORST_LEVEL = 'poor';
export const LOSS_PENALTY_PER_PERCENT = 10;
export const DELAY_KNEE_MS = 160;
export const TILE_SMOOTHING_MS = 5000;
export const PAGE_SMOOTHING_MS = 2000;
export const DEGRADED_LOSS = 0.05;
export const DEGRADE_AFTER_MS = 5000;
export const RECOVER_AFTER_MS = 5000;
export const STALE_AFTER_MS = 5000; // a track that received nothing for this long shows no level

/** `{score, level, loss, jitterMs, rttMs}` by trackStore key ("remote:<tile key>"); absent while there is no data. */
export const qualityStore = createKeyedStore();

/** Effective one-way delay in ms: half the round trip plus twice the jitter (missing figures count as 0). */
export function effectiveDelay(rttMs, jitterMs) {
  return (finite(rttMs) ? rttMs : 0) / 2 + 2 * (finite(jitterMs) ? jitterMs : 0);
}

/** The score (0..100) of a loss fraction (0..1), RTT and jitter in ms; null without a loss figure. */
export function score({ loss, rttMs = null, jitterMs = null }) {
  if (!finite(loss)) return null;
  const delay = effectiveDelay(rttMs, jitterMs);
  const delayPenalty = delay <= DELAY_KNEE_MS ? delay / 40 : (delay - 120) / 10;
  const lossPenalty = Math.max(0, loss) * 100 * LOSS_PENALTY_PER_PERCENT;
  return Math.max(0, Math.min(100, 100 - delayPenalty - lossPenalty));
}

/** The level of a score: 'excellent' (> 80), 'good' (> 40), 'poor'; null without a score. */
export function levelOf(value) {
  if (!finite(value)) return null;
  for (const [level, above] of LEVELS) if (value > above) return level;
  return WORST_LEVEL;
}

/** `{score, level, loss, jitterMs, rttMs}` rounded for display (score to an integer), or null without a loss figure. */
export function assess({ loss, rttMs = null, jitterMs = null }) {
  const value = score({ loss, rttMs, jitterMs });
  if (value === null) return null;
  return {
    score: Math.round(value), level: levelOf(value), loss: round(loss),
    jitterMs: finite(jitterMs) ? Math.round(jitterMs * 10) / 10 : null,
    rttMs: finite(rttMs) ? Math.round(rttMs * 10) / 10 : null,
  };
}

function finite(value) {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Packets received and lost between two samples of cumulative counters; null when the counters restarted. */
export function packetDelta(previous, current) {
  if (!previous || !current || current.packetsReceived < previous.packetsReceived) return null;
  return {
    received: current.packetsReceived - previous.packetsReceived,
    // Late or duplicate packets can lower the cumulative loss count; that never makes an interval's loss negative.
    lost: Math.max(0, current.packetsLost - previous.packetsLost),
  };
}

/** Lost / expected over some deltas, or null when no packet was expected. */
export function lossOf(deltas) {
  let lost = 0;
  let expected = 0;
  for (const delta of deltas) {
    if (!delta) continue;
    lost += delta.lost;
    expected += delta.lost + delta.received;
  }
  return expected > 0 ? lost / expected : null;
}

/** Loss fraction between two samples of `{packetsReceived, packetsLost}`, or null without new packets. */
export function lossFraction(previous, current) {
  return lossOf([packetDelta(previous, current)]);
}

/** Exponentially weighted moving average over time: a sample `tauMs` old weighs 1/e of a fresh one. */
export class Ewma {
  constructor(tauMs) {
    this.tauMs = tauMs;
    this.value = null;
    this.at = null;
  }

  update(now, sample) {
    if (this.value === null) {
      this.value = sample;
    } else {
      const alpha = 1 - Math.exp(-Math.max(0, now - this.at) / this.tauMs);
      this.value += alpha * (sample - this.value);
    }
    this.at = now;
    return this.value;
  }
}

/** Degraded after loss > `threshold` for `degradeAfterMs`; recovered after loss ≤ `threshold` for `recoverAfterMs`. */
export class DegradeDetector {
  constructor({
    threshold = DEGRADED_LOSS, degradeAfterMs = DEGRADE_AFTER_MS, recoverAfterMs = RECOVER_AFTER_MS,
  } = {}) {
    this.threshold = threshold;
    this.degradeAfterMs = degradeAfterMs;
    this.recoverAfterMs = recoverAfterMs;
    this.degraded = false;
    this.since = null; // when the loss last started to disagree with `degraded`
  }

  /** Feed the smoothed loss (null: no data, counts as healthy); returns true when `degraded` flipped. */
  update(now, loss) {
    const high = loss !== null && loss > this.threshold;
    if (high === this.degraded) {
      this.since = null;
      return false;
    }
    if (this.since === null) this.since = now;
    if (now - this.since < (high ? this.degradeAfterMs : this.recoverAfterMs)) return false;
    this.degraded = high;
    this.since = null;
    return true;
  }
}

/** Turns successive `MediaClient.stats()` results into per-track levels (in `store`) and page degraded flips. */
export class QualityMonitor {
  constructor({ store = qualityStore, tileSmoothingMs = TILE_SMOOTHING_MS, pageSmoothingMs = PAGE_SMOOTHING_MS,
    staleAfterMs = STALE_AFTER_MS, detector = new DegradeDetector() } = {}) {
    this.store = store;
    this.tileSmoothingMs = tileSmoothingMs;
    this.staleAfterMs = staleAfterMs;
    this.tracks = new Map(); // tile key -> {counters, ewma, jitter, lastPacketAt, shown}
    this.rtt = new Ewma(tileSmoothingMs); // ms, the page's round trip to the SFU
    this.outbound = new Map(); // stream id -> counters
    this.inboundLoss = new Ewma(pageSmoothingMs);
    this.outboundLoss = new Ewma(pageSmoothingMs);
    this.detector = detector;
  }

  /**
   * Feed one stats sample taken at `now`: `inbound` by tile key `{packetsReceived, packetsLost}`, `outbound` by
   * stream `{packetsSent, packetsLost}` (the SFU's receiver reports). Returns `{degraded, inboundLoss, outboundLoss}`
   * when the page's degraded state flipped, else null.
   */
  update(now, { inbound = {}, outbound = {} } = {}) {
    const rtts = Object.values(outbound).map((o) => o.rtt).filter((rtt) => finite(rtt) && rtt > 0);
    if (rtts.length) this.rtt.update(now, Math.max(...rtts) * 1000);
    const rttMs = this.rtt.at !== null && now - this.rtt.at <= this.staleAfterMs ? this.rtt.value : null;
    const inboundDeltas = [];
    for (const [key, counters] of Object.entries(inbound)) {
      const track = this.tracks.get(key)
        || { ewma: new Ewma(this.tileSmoothingMs), jitter: new Ewma(this.tileSmoothingMs), lastPacketAt: null, shown: null };
      const delta = packetDelta(track.counters, counters);
      const loss = lossOf([delta]);
      if (loss !== null) {
        track.ewma.update(now, loss);
        if (finite(counters.jitter)) track.jitter.update(now, counters.jitter * 1000);
        track.lastPacketAt = now;
      }
      track.counters = counters;
      this.tracks.set(key, track);
      inboundDeltas.push(delta);
      const fresh = track.lastPacketAt !== null && now - track.lastPacketAt <= this.staleAfterMs;
      this.show(key, track, fresh ? assess({ loss: track.ewma.value, rttMs, jitterMs: track.jitter.value }) : null);
    }
    for (const key of [...this.tracks.keys()]) {
      if (!(key in inbound)) this.forget(key);
    }

    const outboundDeltas = [];
    for (const [id, counters] of Object.entries(outbound)) {
      const sample = { packetsReceived: counters.packetsSent - counters.packetsLost, packetsLost: counters.packetsLost };
      outboundDeltas.push(packetDelta(this.outbound.get(id), sample));
      this.outbound.set(id, sample);
    }
    for (const id of [...this.outbound.keys()]) if (!(id in outbound)) this.outbound.delete(id);

    const inboundLoss = this.smooth(this.inboundLoss, now, lossOf(inboundDeltas));
    const outboundLoss = this.smooth(this.outboundLoss, now, lossOf(outboundDeltas));
    const worst = Math.max(inboundLoss ?? -1, outboundLoss ?? -1);
    if (!this.detector.update(now, worst < 0 ? null : worst)) return null;
    return { degraded: this.detector.degraded, inboundLoss: round(inboundLoss), outboundLoss: round(outboundLoss) };
  }

  /** Forget everything (peer connections closed); tiles stop showing a level. */
  clear() {
    for (const key of [...this.tracks.keys()]) this.forget(key);
    this.outbound.clear();
  }

  /** The smoothed loss after adding `sample` (null: no packets); null once nothing arrived for a while. */
  smooth(ewma, now, sample) {
    if (sample !== null) return ewma.update(now, sample);
    return ewma.at !== null && now - ewma.at <= this.staleAfterMs ? ewma.value : null;
  }

  show(key, track, value) {
    // Only a visible change reaches the tiles: the score (hence the level), or the loss at the tooltip's 0.1 %.
    const same = value && track.shown && value.score === track.shown.score
      && value.loss.toFixed(3) === track.shown.loss.toFixed(3);
    if (same || (!value && !track.shown)) return;
    track.shown = value;
    this.store.set(`remote:${key}`, value);
  }

  forget(key) {
    const track = this.tracks.get(key);
    this.tracks.delete(key);
    if (track && track.shown) this.store.set(`remote:${key}`, null);
  }
}

function round(loss) {
  return loss === null ? null : Math.round(loss * 10000) / 10000;
}
