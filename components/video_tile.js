// A participant tile: video (or an initial-letter avatar), optional audio, label, spinner until the first frame.
import { trackStore } from 'orange-media/media_client.js';

export default {
  template: `
    <div class="video-tile" :data-tile="tileKey" :data-playing="playing ? 'true' : 'false'"
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
      <div style="position: absolute; left: 8px; bottom: 8px; padding: 2px 8px; border-radius: 6px;
                  background: rgba(0, 0, 0, 0.55); color: white; font-size: 13px" data-testid="tile-label">
        {{ label }}<span v-if="muted" title="Microphone off"> · 🔇</span></div>
      <slot></slot>
    </div>`,
  props: {
    tileKey: String,
    label: { type: String, default: '' },
    videoKey: { type: String, default: null },
    audioKey: { type: String, default: null },
    mirrored: { type: Boolean, default: false },
    muted: { type: Boolean, default: false },
    fit: { type: String, default: 'cover' },
  },
  data() {
    return { hasVideo: false, playing: false };
  },
  computed: {
    initial() {
      return (this.label || '?').trim().charAt(0).toUpperCase();
    },
  },
  watch: {
    videoKey() {
      this.bindVideo();
    },
    audioKey() {
      this.bindAudio();
    },
  },
  mounted() {
    this.bindVideo();
    this.bindAudio();
  },
  unmounted() {
    if (this.unsubscribeVideo) this.unsubscribeVideo();
    if (this.unsubscribeAudio) this.unsubscribeAudio();
  },
  methods: {
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
