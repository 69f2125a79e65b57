// A participant tile: video (or an initial-letter avatar), optional audio, label, spinner until the first frame.
import { trackStore } from 'orange-media/media_client.js';
import { qualityStore } from 'orange-media/quality.js';

// Signal bars lit and their colour, per level of components/js/quality.js (the stats panel shows the same score).
const QUALITY_LOOK = { excellent: [3, '#22c55e'], good: [2, '#eab308'], poor: [1, '#ef4444'] };

export default {
  template: `
    <div class="video-tile" :data-tile="tileKey" :data-playing="playing ? 'true' : 'false'"
         :data-speaking="speaking ? 'true' : 'false'" :data-hand="hand ? 'true' : 'false'"
         style="position: relative; background: #1f2937; border-radius: 10px; overflow: hidden; aspect-ratio: 16 / 9">
      <video ref="video" autoplay playsinline muted
             :style="{width: '100%', height: '100%', objectFit: fit, transform: mirrored ? 'scaleX(-1)' : 'none',
                      display: videoKey && hasVideo ? 'block' : 'none'}"></video>
      <audio ref="audio" autoplay></audio>
      <div v-if="!videoKey || !hasVideo"
           style="position: absolute; inset: 0; display: flex; align-items: center; justify-content: center">
        <div style="width: 72px; height: 72px; border-radius: 50%; background: #ea580c; color: white;
                    display: flex; align-items: center; justify-content: center; font-size: 32px; font-weight: 600">
          {{ initial }}</div>
      </div>
      <div v-if="videoKey && hasVideo && !playing" data-testid="tile-spinner"
           style="position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
                  color: #e5e7eb; font-size: 14px">Connecting…</div>
      <div v-if="speaking || hand" style="position: absolute; inset: 0; border: 3px solid #ea580c;
           border-radius: 10px; pointer-events: none"></div>
      <div v-if="hand" data-testid="tile-hand" title="Hand raised"
           style="position: absolute; left: 8px; top: 8px; padding: 2px 8px; border-radius: 6px;
                  background: #ea580c; color: white; display: flex"><i class="material-icons"
                  style="font-size: 20px">back_hand</i></div>
      <div style="position: absolute; left: 8px; bottom: 8px; padding: 2px 8px; border-radius: 6px;
                  background: rgba(0, 0, 0, 0.55); color: white; font-size: 13px" data-testid="tile-label">
        {{ label }}<i v-if="muted" class="material-icons" data-testid="tile-muted" title="Microphone off"
           style="font-size: 15px; vertical-align: -3px; margin-left: 6px">mic_off</i></div>
      <div style="position: absolute; right: 8px; bottom: 8px; display: flex; gap: 4px; align-items: stretch">
        <div v-if="quality" data-testid="tile-quality" :data-level="quality.level" :data-score="quality.score"
             :title="qualityTitle" :aria-label="qualityTitle" style="display: flex; gap: 2px; align-items: flex-end;
             height: 18px; padding: 4px 7px; border-radius: 6px; background: rgba(0, 0, 0, 0.6); box-sizing: content-box">
          <span v-for="bar in 3" :key="bar" :style="{width: '5px', height: 20 + bar * 26 + '%', borderRadius: '1px',
                background: bar <= qualityLook[0] ? qualityLook[1] : '#ffffff59'}"></span>
        </div>
        <button v-if="statsButton && videoKey && hasVideo" type="button" data-testid="tile-stats"
                title="Connection figures and plots" aria-label="Connection figures and plots"
                @click.stop="$emit('stats', {videoKey})"
                style="border: 0; cursor: pointer; padding: 2px 6px; border-radius: 6px; background: rgba(0, 0, 0, 0.6);
                       color: white; display: flex; align-items: center"><i class="material-icons"
                style="font-size: 18px">query_stats</i></button>
      </div>
      <slot></slot>
    </div>`,
  props: {
    tileKey: String,
    label: { type: String, default: '' },
    videoKey: { type: String, default: null },
    audioKey: { type: String, default: null },
    mirrored: { type: Boolean, default: false },
    muted: { type: Boolean, default: false },
    speaking: { type: Boolean, default: false },
    hand: { type: Boolean, default: false },
    fit: { type: String, default: 'cover' },
    statsButton: { type: Boolean, default: true },
  },
  data() {
    return { hasVideo: false, playing: false, qualities: {} };
  },
  computed: {
    initial() {
      return (this.label || '?').trim().charAt(0).toUpperCase();
    },
    qualityKeys() { // only received tracks have a quality; local and self tiles never show one
      return [this.videoKey, this.audioKey].filter((key) => key && key.startsWith('remote:'));
    },
    quality() { // the worse of the tile's tracks
      const known = this.qualityKeys.map((key) => this.qualities[key]).filter(Boolean);
      return known.length ? known.reduce((a, b) => (b.score < a.score ? b : a)) : null;
    },
    qualityLook() {
      return this.quality ? QUALITY_LOOK[this.quality.level] : [0, ''];
    },
    qualityTitle() {
      const q = this.quality;
      return q ? `Connection: ${q.level} (score ${q.score}), loss ${(q.loss * 100).toFixed(1)} %` : '';
    },
  },
  watch: {
    videoKey() {
      this.bindVideo();
    },
    audioKey() {
      this.bindAudio();
    },
    qualityKeys() {
      this.bindQuality();
    },
  },
  mounted() {
    this.bindVideo();
    this.bindAudio();
    this.bindQuality();
  },
  unmounted() {
    for (const unsubscribe of this.unsubscribeQuality || []) unsubscribe();
    if (this.unsubscribeVideo) this.unsubscribeVideo();
    if (this.unsubscribeAudio) this.unsubscribeAudio();
  },
  methods: {
    bindQuality() {
      for (const unsubscribe of this.unsubscribeQuality || []) unsubscribe();
      this.qualities = {};
      this.unsubscribeQuality = this.qualityKeys.map((key) => qualityStore.subscribe(key, (value) => {
        this.qualities = { ...this.qualities, [key]: value };
      }));
    },
    bindVideo() {
      if (this.unsubscribeVideo) this.unsubscribeVideo();
      this.unsubscribeVideo = null;
      this.playing = false;
      if (!this.videoKey) {
        this.$refs.video.srcObject = null;
        this.hasVideo = false;
        return;
      }
      this.unsubscribeVideo = trackStore.subscribe(this.videoKey, (track) => {
        const video = this.$refs.video;
        if (!video) return;
        this.hasVideo = !!track;
        this.playing = false;
        video.srcObject = track ? new MediaStream([track]) : null;
        if (track) this.waitFirstFrame(video);
      });
    },
    waitFirstFrame(video) {
      const started = performance.now();
      const onFrame = () => {
        if (!this.playing) {
          this.playing = true;
          this.$emit('first_frame', { key: this.tileKey, ms: Math.round(performance.now() - started),
            width: video.videoWidth, height: video.videoHeight });
        }
      };
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
      else video.addEventListener('playing', onFrame, { once: true });
      video.play().catch(() => {});
    },
    bindAudio() {
      if (this.unsubscribeAudio) this.unsubscribeAudio();
      this.unsubscribeAudio = null;
      if (!this.audioKey) {
        this.$refs.audio.srcObject = null;
        return;
      }
      this.unsubscribeAudio = trackStore.subscribe(this.audioKey, (track) => {
        const audio = this.$refs.audio;
        if (!audio) return;
        audio.srcObject = track ? new MediaStream([track]) : null;
        if (track) {
          audio.play().catch(() => {
            // Autoplay blocked until the user interacts with the page: retry on the first click or key press.
            const retry = () => audio.play().catch(() => {});
            document.addEventListener('pointerdown', retry, { once: true });
            document.addEventListener('keydown', retry, { once: true });
            this.$emit('autoplay_blocked', {});
          });
        }
      });
    },
  },
};
