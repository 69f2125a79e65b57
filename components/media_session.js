// Hosts the page's MediaClient (one per page) and relays its events to Python. Invisible.
import { MediaClient } from 'orange-media/media_client.js';
import { watchDevices } from 'orange-media/media_devices.js';

export default {
  template: '<span style="display: none"></span>',
  props: {
    iceServers: { type: Array, default: () => [] },
    caps: { type: Object, default: () => ({}) },
    heartbeatMs: { type: Number, default: 5000 },
  },
  mounted() {
    this.client = new MediaClient({
      iceServers: this.iceServers,
      caps: this.caps,
      emit: (name, payload) => this.$emit(name, payload),
    });
    globalThis.orangeMedia = this.client; // diagnostics and end-to-end tests read stats from here
    this.heartbeat = setInterval(() => this.$emit('heartbeat', {}), this.heartbeatMs);
    this.onUnload = () => this.client.close();
    window.addEventListener('pagehide', this.onUnload);
    this.stopWatching = watchDevices(() => this.$emit('devicechange', {}));
    this.$emit('ready', {});
  },
  unmounted() {
    clearInterval(this.heartbeat);
    this.stopWatching();
    window.removeEventListener('pagehide', this.onUnload);
    this.client.close();
  },
  methods: {
    // A failing method answers {__error__} instead of throwing: a thrown error never reaches Python, which would
    // only notice after its run_method timeout.
    async call(method, ...args) {
      try {
        return await this.client[method](...args);
      } catch (error) {
        console.error(`orange media: ${method} failed`, error);
        return { __error__: `${method}: ${(error && error.message) || error}` };
      }
    },
  },
};
