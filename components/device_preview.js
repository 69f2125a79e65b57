// Lobby self-preview: mirrored camera video, a microphone level meter, and device events for Python.
import {
  describeMediaError, listDevices, watchDevices, openCamera, openMicrophone, levelMeter, hasMediaDevices,
} from 'orange-media/media_devices.js';

export default {
  template: `
    <div class="device-preview">
      <video ref="video" autoplay playsinline muted data-testid="self-preview"
             style="transform: scaleX(-1); width: 100%; aspect-ratio: 4 / 3; object-fit: cover; background: #111; border-radius: 8px"></video>
      <div class="level-track" title="Microphone level"
           style="height: 6px; background: #e5e7eb; border-radius: 3px; margin-top: 8px; overflow: hidden">
        <div ref="level" data-testid="mic-level" style="height: 100%; width: 0%; background: #f97316; transition: width 60ms linear"></div>
      </div>
    </div>`,
  props: {
    caps: { type: Object, default: () => ({}) },
  },
  data() {
    return { cameraId: null, microphoneId: null };
  },
  async mounted() {
    this.stopWatching = watchDevices(() => this.refreshDevices());
    if (!hasMediaDevices()) {
      this.$emit('media_error', describeMediaError({ name: 'TypeError' }));
      return;
    }
    await this.start(null, null);
  },
  unmounted() {
    if (this.stopWatching) this.stopWatching();
    this.stopCamera();
    this.stopMicrophone();
  },
  methods: {
    async start(cameraId, microphoneId) {
      await this.useCamera(cameraId);
      await this.useMicrophone(microphoneId);
      await this.refreshDevices();
    },
    async refreshDevices() {
      const devices = await listDevices();
      this.$emit('devices', {
        ...devices,
        cameraId: this.cameraId,
        microphoneId: this.microphoneId,
      });
      return devices;
    },
    async useCamera(deviceId) {
      this.stopCamera();
      try {
        this.cameraTrack = await openCamera(deviceId, this.caps);
      } catch (error) {
        this.$emit('media_error', describeMediaError(error, 'camera'));
        return null;
      }
      this.cameraId = this.cameraTrack.getSettings().deviceId || deviceId;
      this.$refs.video.srcObject = new MediaStream([this.cameraTrack]);
      this.cameraTrack.addEventListener('ended', () => {
        this.$emit('media_error', describeMediaError({ name: 'AbortError' }, 'camera'));
      });
      this.$emit('camera', { deviceId: this.cameraId, label: this.cameraTrack.label });
      return this.cameraId;
    },
    async useMicrophone(deviceId) {
      this.stopMicrophone();
      try {
        this.microphoneTrack = await openMicrophone(deviceId);
      } catch (error) {
        this.$emit('media_error', describeMediaError(error, 'microphone'));
        return null;
      }
      this.microphoneId = this.microphoneTrack.getSettings().deviceId || deviceId;
      this.meter = levelMeter(this.microphoneTrack);
      const tick = () => {
        if (!this.meter) return;
        if (this.$refs.level) this.$refs.level.style.width = `${Math.round(this.meter.read() * 100)}%`;
        this.meterFrame = requestAnimationFrame(tick);
      };
      tick();
      this.$emit('microphone', { deviceId: this.microphoneId, label: this.microphoneTrack.label });
      return this.microphoneId;
    },
    stopCamera() {
      if (this.cameraTrack) this.cameraTrack.stop();
      this.cameraTrack = null;
      if (this.$refs.video) this.$refs.video.srcObject = null;
    },
    stopMicrophone() {
      if (this.meterFrame) cancelAnimationFrame(this.meterFrame);
      if (this.meter) this.meter.close();
      this.meter = null;
      if (this.microphoneTrack) this.microphoneTrack.stop();
      this.microphoneTrack = null;
    },
    stopAll() {
      this.stopCamera();
      this.stopMicrophone();
    },
  },
};
