// Connection quality from WebRTC packet counters. Pure logic: no DOM, no timers, no clock (every `now` is passed in,
// in milliseconds). MediaClient feeds `QualityMonitor` with its `stats()` once a second; tiles read `qualityStore`.
//
// As the original: a tile's level comes from the packet loss of its tracks, smoothed over 5 s (≤1 % good, ≤3 %
// tolerable, ≤5 % unhealthy, above that bad); the page counts as degraded once its inbound or outbound loss,
// smoothed over 2 s, stays above 5 % for 5 s, and as recovered once it stays at or below 5 % for 5 s.
import { createKeyedStore } from './keyed_store.js';

export const LEVELS = [
  ['good', 0.01],
  ['tolerable', 0.03],
  ['unhealthy', 0.05],
];
export const WORST_LEVEL = 'bad';
export const TILE_SMOOTHING_MS = 5000;
export const PAGE_SMOOTHING_MS = 2000;
export const DEGRADED_LOSS = 0.05;
export const DEGRADE_AFTER_MS = 5000;
export const RECOVER_AFTER_MS = 5000;
export const STALE_AFTER_MS = 5000; // a track that received nothing for this long shows no level

/** `{loss, level}` by trackStore key ("remote:<tile key>"); absent while there is no data. */
export const qualityStore = createKeyedStore();

/** The level of a loss fraction (0..1), or null without data. */
export function classify(loss) {
  if (loss === null || loss === undefined || Number.isNaN(loss)) return null;
  for (const [level, upTo] of LEVELS) if (loss <= upTo) return level;
  return WORST_LEVEL;
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
    this.tracks = new Map(); // tile key -> {counters, ewma, lastPacketAt, shown}
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
    const inboundDeltas = [];
    for (const [key, counters] of Object.entries(inbound)) {
      const track = this.tracks.get(key) || { ewma: new Ewma(this.tileSmoothingMs), lastPacketAt: null, shown: null };
      const delta = packetDelta(track.counters, counters);
      const loss = lossOf([delta]);
      if (loss !== null) {
        track.ewma.update(now, loss);
        track.lastPacketAt = now;
      }
      track.counters = counters;
      this.tracks.set(key, track);
      inboundDeltas.push(delta);
      const fresh = track.lastPacketAt !== null && now - track.lastPacketAt <= this.staleAfterMs;
      this.show(key, track, fresh ? track.ewma.value : null);
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

  show(key, track, loss) {
    const value = loss === null ? null : { loss: round(loss), level: classify(loss) };
    // Only a visible change reaches the tiles: the level, or the loss at the tooltip's 0.1 % resolution.
    const same = value && track.shown && value.level === track.shown.level
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
