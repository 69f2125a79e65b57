// Capture devices: listing, opening with the MAX_WEBCAM_* caps, level metering and error messages.
// NOTE: no DOM access in this module (it is shared by the lobby preview, the stations and the media client).

export const ERROR_MESSAGES = {
  permission: 'Camera or microphone permission was denied. Allow access in the browser (the icon left of the address bar) and reload the page.',
  'no-device': 'No camera or microphone was found. Plug one in; the list refreshes by itself.',
  busy: 'The device is in use by another application or could not be started. Close the other application and try again.',
  constraints: 'The selected device cannot deliver the requested format. Choose another device.',
  insecure: 'Cameras only work on a secure page: open the app over https or on localhost.',
  aborted: 'The device stopped unexpectedly. Try again or choose another device.',
  unknown: 'The device could not be opened.',
};

/** Map a getUserMedia/getDisplayMedia failure to {code, message, name}. */
export function describeMediaError(error, what = 'device') {
  const name = (error && error.name) || 'Error';
  let code = 'unknown';
  if (name === 'NotAllowedError' || name === 'PermissionDeniedError' || name === 'SecurityError') code = 'permission';
  else if (name === 'NotFoundError' || name === 'DevicesNotFoundError') code = 'no-device';
  else if (name === 'NotReadableError' || name === 'TrackStartError') code = 'busy';
  else if (name === 'OverconstrainedError' || name === 'ConstraintNotSatisfiedError') code = 'constraints';
  else if (name === 'AbortError') code = 'aborted';
  else if (name === 'TypeError' && !hasMediaDevices()) code = 'insecure';
  let message = ERROR_MESSAGES[code];
  if (code === 'permission') {
    message = what === 'microphone' ? 'Microphone permission was denied. Allow access in the browser and reload the page.'
      : what === 'camera' ? 'Camera permission was denied. Allow access in the browser and reload the page.'
        : ERROR_MESSAGES.permission;
  }
  return { code, name, what, message, detail: (error && error.message) || '' };
}

export function hasMediaDevices() {
  return typeof navigator !== 'undefined' && !!navigator.mediaDevices && !!navigator.mediaDevices.getUserMedia;
}

/** The cameras and microphones, as plain objects. Labels are empty until permission was granted once. */
export async function listDevices() {
  if (!hasMediaDevices()) return { cameras: [], microphones: [] };
  const devices = await navigator.mediaDevices.enumerateDevices();
  const pick = (kind, fallback) => devices
    .filter((d) => d.kind === kind && d.deviceId)
    .map((d, i) => ({ deviceId: d.deviceId, label: d.label || `${fallback} ${i + 1}`, groupId: d.groupId }));
  return { cameras: pick('videoinput', 'Camera'), microphones: pick('audioinput', 'Microphone') };
}

/** Call `callback` whenever devices are plugged in or out; returns a function that stops watching. */
export function watchDevices(callback) {
  if (!hasMediaDevices()) return () => {};
  const handler = () => callback();
  navigator.mediaDevices.addEventListener('devicechange', handler);
  return () => navigator.mediaDevices.removeEventListener('devicechange', handler);
}

/** Video constraints honouring the caps: never above the quality level (shorter side) or the frame rate. */
export function cameraConstraints(deviceId, caps = {}) {
  const level = caps.maxQualityLevel || 1080;
  const fps = caps.maxFramerate || 24;
  const height = Math.min(720, level);
  const video = {
    width: { ideal: Math.round((height * 16) / 9) },
    height: { ideal: height, max: level },
    frameRate: { ideal: fps, max: fps },
  };
  if (deviceId) video.deviceId = { exact: deviceId };
  return video;
}

/** RTCRtpEncodingParameters for a camera track of the given settings, honouring the caps. */
export function cameraEncodings(track, caps = {}) {
  const settings = (track && track.getSettings && track.getSettings()) || {};
  const shorter = Math.min(settings.width || 0, settings.height || 0);
  const level = caps.maxQualityLevel || 1080;
  return [{
    maxBitrate: caps.maxBitrate || 1200000,
    maxFramerate: caps.maxFramerate || 24,
    scaleResolutionDownBy: shorter > level ? shorter / level : 1,
  }];
}

export async function openCamera(deviceId, caps = {}) {
  const stream = await navigator.mediaDevices.getUserMedia({ video: cameraConstraints(deviceId, caps), audio: false });
  return stream.getVideoTracks()[0];
}

export async function openMicrophone(deviceId) {
  const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  if (deviceId) audio.deviceId = { exact: deviceId };
  const stream = await navigator.mediaDevices.getUserMedia({ audio, video: false });
  return stream.getAudioTracks()[0];
}

export async function openScreen(caps = {}) {
  const stream = await navigator.mediaDevices.getDisplayMedia({
    video: { frameRate: { ideal: Math.min(caps.maxFramerate || 24, 15) } },
    audio: false,
  });
  return stream.getVideoTracks()[0];
}

/** Ask once for camera and microphone so that device labels become visible. Returns an error or null. */
export async function requestPermission() {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    stream.getTracks().forEach((t) => t.stop());
    return null;
  } catch (error) {
    return describeMediaError(error);
  }
}

/** A microphone level meter: `read()` gives 0..1 (RMS peak), `close()` frees the audio graph. */
export function levelMeter(track) {
  const AudioContextClass = globalThis.AudioContext || globalThis.webkitAudioContext;
  if (!AudioContextClass || !track) return { read: () => 0, close: () => {} };
  const context = new AudioContextClass();
  const source = context.createMediaStreamSource(new MediaStream([track]));
  const analyser = context.createAnalyser();
  analyser.fftSize = 256;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  return {
    read() {
      if (context.state === 'suspended') context.resume().catch(() => {});
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      return Math.min(1, Math.sqrt(sum / samples.length) * 4);
    },
    close() {
      source.disconnect();
      context.close().catch(() => {});
    },
  };
}
