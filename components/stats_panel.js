// The stats panel's probe: while `active`, reads the figures behind `videoKey` once a second (components/js/
// track_stats.js) and emits them as `sample`; while not active it has no timer and reads nothing. Invisible.
import { figures, readTrack } from 'orange-media/track_stats.js';
import { assess, qualityStore } from 'orange-media/quality.js';

const INTERVAL_MS = 1000;

export default {
  template: '<span style="display: none"></span>',
  props: {
    videoKey: { type: String, default: null },
    active: { type: Boolean, default: false },
  },
  watch: {
    active() {
      this.restart();
    },
    videoKey() {
      this.restart();
    },
  },
  mounted() {
    this.restart();
  },
  unmounted() {
    this.stop();
  },
  methods: {
    restart() {
      this.stop();
      if (!this.active || !this.videoKey) return;
      this.previous = null;
      this.timer = setInterval(() => this.sample(), INTERVAL_MS);
      this.sample();
    },
    stop() {
      clearInterval(this.timer);
      this.timer = null;
      this.previous = null;
    },
    async sample() {
      if (this.busy) return; // a slow getStats() never piles up
      this.busy = true;
      const key = this.videoKey;
      try {
        const current = await readTrack(globalThis.orangeMedia, key);
        if (!this.timer || key !== this.videoKey) return;
        const result = figures(this.previous, current);
        this.previous = current;
        if (!result) {
          this.$emit('sample', { key, missing: true });
          return;
        }
        // What this page receives: the very value its tile's bars show. What it sends: the same scoring of the SFU's
        // receiver report.
        const quality = key.startsWith('remote:') ? qualityStore.get(key)
          : assess({ loss: result.loss, rttMs: result.rttMs, jitterMs: result.jitterMs });
        this.$emit('sample', { key, ...result, score: quality ? quality.score : null,
          level: quality ? quality.level : null });
      } catch {
        // a peer connection closed mid-read: the next sample starts over
        this.previous = null;
      } finally {
        this.busy = false;
      }
    },
  },
};
