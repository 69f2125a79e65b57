// The browser's WebRTC driver. Python (media/negotiation.py) decides every push, pull and close and talks to
// Calls; this module only executes: capture, transceivers, offers/answers, stats. It never sees a Calls session id
// or a secret, and it has zero DOM access: received and local tracks are published in `trackStore`, where the tile
// components pick them up.
//
// Two peer connections: `push` (our sendonly tracks) and `pull` (tracks from others), each mapped to its own Calls
// session, so a pending pull never blocks a push and payload types never get renumbered across the two.
import {
  cameraEncodings, describeMediaError, listDevices, openCamera, openMicrophone, openScreen,
} from './media_devices.js';
import { watchSpeaking } from './speaking.js';
import { createKeyedStore } from './keyed_store.js';
import { QualityMonitor } from './quality.js';

const GATHER_TIMEOUT_MS = 3000;
const QUALITY_INTERVAL_MS = 1000;

/** Tracks by key ("local:camera", "remote:<tileKey>"), with subscribers, shared by every component of the page. */
export const trackStore = createKeyedStore();

export class MediaClient {
  constructor({ iceServers = [], caps = {}, emit = () => {} } = {}) {
    this.iceServers = iceServers;
    this.caps = caps;
    this.emit = emit;
    this.pcs = {};
    this.local = new Map(); // key -> { source, track, deviceId, transceiver }
    this.pullMids = new Map(); // mid -> tileKey
    this.quality = new QualityMonitor();
    this.qualityTimer = null;
  }

  // ---- peer connections ---------------------------------------------------------------------------------------

  pc(role) {
    if (this.pcs[role]) return this.pcs[role];
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    pc.addEventListener('connectionstatechange', () => this.emit('connection', { role, state: pc.connectionState }));
    if (role === 'pull') {
      pc.addEventListener('track', (event) => {
        const key = this.pullMids.get(event.transceiver.mid);
        if (key) trackStore.set(`remote:${key}`, event.track);
      });
    }
    this.pcs[role] = pc;
    this.watchQuality();
    return pc;
  }

  /** Drop the `role` peer connection ('push' or 'pull'; both when omitted) because Python rebuilds its session;
   * local capture is kept for re-pushing. The other connection is left alone. */
  reset(role = null) {
    for (const name of role ? [role] : Object.keys(this.pcs)) {
      const pc = this.pcs[name];
      if (pc) pc.close();
      delete this.pcs[name];
      if (name === 'push') {
        for (const entry of this.local.values()) this.detach(entry);
      } else if (name === 'pull') {
        for (const key of this.pullMids.values()) trackStore.set(`remote:${key}`, null);
        this.pullMids.clear();
      }
    }
    return true;
  }

  connectionStates() {
    const states = {};
    for (const [role, pc] of Object.entries(this.pcs)) states[role] = pc.connectionState;
    return states;
  }

  // ---- local capture --------------------------------------------------------------------------------------------

  /** Open a camera ('camera'), microphone ('mic') or screen ('screen') under `key`. Returns {ok, label, deviceId}. */
  async openLocal({ key, source, deviceId = null }) {
    let track;
    try {
      if (source === 'mic') track = await openMicrophone(deviceId);
      else if (source === 'screen') track = await openScreen(this.caps);
      else track = await openCamera(deviceId, this.caps);
    } catch (error) {
      const what = source === 'mic' ? 'microphone' : source;
      return { ok: false, error: describeMediaError(error, what) };
    }
    this.closeLocal(key);
    const entry = { source, track, deviceId: track.getSettings().deviceId || deviceId, transceiver: null };
    this.local.set(key, entry);
    track.addEventListener('ended', () => this.emit('local_ended', { key, source }));
    trackStore.set(`local:${key}`, track);
    return { ok: true, label: track.label, deviceId: entry.deviceId };
  }

  /** Stop capture for `key` (the light goes off); a pushed transceiver keeps its slot and sends nothing. */
  closeLocal(key) {
    const entry = this.local.get(key);
    if (!entry) return false;
    entry.track.stop();
    if (entry.transceiver && !entry.transceiver.stopped) entry.transceiver.sender.replaceTrack(null);
    this.detach(entry);
    this.local.delete(key);
    trackStore.set(`local:${key}`, null);
    return true;
  }

  /** Mute/unmute without renegotiation. Cameras are released while off and reopened on the same device. */
  async setLocalEnabled(key, enabled) {
    const entry = this.local.get(key);
    if (!entry) return { ok: false, error: { code: 'unknown', message: `nothing captured for ${key}` } };
    if (entry.source === 'mic') {
      entry.track.enabled = enabled;
      return { ok: true };
    }
    if (!enabled) {
      entry.track.stop();
      if (entry.transceiver) await entry.transceiver.sender.replaceTrack(null);
      entry.disabled = true;
      trackStore.set(`local:${key}`, null);
      return { ok: true };
    }
    if (!entry.disabled) return { ok: true };
    let track;
    try {
      track = entry.source === 'screen' ? await openScreen(this.caps) : await openCamera(entry.deviceId, this.caps);
    } catch (error) {
      return { ok: false, error: describeMediaError(error, 'camera') };
    }
    entry.track = track;
    entry.disabled = false;
    if (entry.transceiver) await entry.transceiver.sender.replaceTrack(track);
    trackStore.set(`local:${key}`, track);
    return { ok: true };
  }

  /** Forget `entry`'s transceiver (and stop watching its voice activity). */
  detach(entry) {
    entry.transceiver = null;
    if (entry.stopSpeaking) entry.stopSpeaking();
    entry.stopSpeaking = null;
  }

  localKeys() {
    return [...this.local.keys()];
  }

  /** The machine's cameras and microphones ({cameras, microphones}: deviceId, label, groupId). */
  listDevices() {
    return listDevices();
  }

  // ---- push -------------------------------------------------------------------------------------------------

  /** Add sendonly transceivers for the given local keys; returns {sdp, mids: {key: mid}} after ICE gathering. */
  async createPushOffer(keys) {
    const pc = this.pc('push');
    for (const key of keys) {
      const entry = this.local.get(key);
      if (!entry) throw new Error(`nothing captured for ${key}`);
      if (entry.transceiver) continue;
      const init = { direction: 'sendonly', streams: [] };
      if (entry.source === 'camera') init.sendEncodings = cameraEncodings(entry.track, this.caps);
      // A camera or screen switched off (its capture stopped) is pushed again without a track after a rebuilt
      // session: the sender sends nothing until setLocalEnabled(key, true) gives it the reopened one.
      entry.transceiver = pc.addTransceiver(entry.disabled ? entry.track.kind : entry.track, init);
      if (entry.source === 'camera' || entry.source === 'screen') preferCodec(entry.transceiver, 'video/VP8');
      if (entry.source === 'mic') {
        entry.stopSpeaking = watchSpeaking(entry.transceiver.sender, (speaking) => this.emit('speaking', { key, speaking }));
      }
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const mids = {};
    for (const key of keys) mids[key] = this.local.get(key).transceiver.mid;
    return { sdp: pc.localDescription.sdp, mids };
  }

  async applyPushAnswer(sdp) {
    await this.pc('push').setRemoteDescription({ type: 'answer', sdp });
    return true;
  }

  /** Resolve once each key's sender really sends (bytesSent > 0): returns the keys that do, within `timeoutMs`. */
  async waitSending(keys, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    const sending = new Set();
    let delay = 10;
    while (Date.now() < deadline && sending.size < keys.length) {
      for (const key of keys) {
        if (sending.has(key)) continue;
        const entry = this.local.get(key);
        if (!entry || !entry.transceiver) continue;
        const stats = await entry.transceiver.sender.getStats();
        for (const report of stats.values()) {
          if (report.type === 'outbound-rtp' && report.bytesSent > 0) sending.add(key);
        }
      }
      if (sending.size < keys.length) await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
    return [...sending];
  }

  /** Stop the transceivers of `keys` and return an offer for a negotiated close ({sdp, mids}). */
  async createPushCloseOffer(keys) {
    const pc = this.pc('push');
    const mids = {};
    for (const key of keys) {
      const entry = this.local.get(key);
      if (entry && entry.transceiver) {
        mids[key] = entry.transceiver.mid;
        // Inactive rather than stopped, as for pulls: Chromium recycles a stopped m-line for the next camera under
        // a new mid, which the embedded SFU (aiortc) does not follow. The slot is not reused; a new one is added.
        entry.transceiver.sender.replaceTrack(null);
        entry.transceiver.direction = 'inactive';
        this.detach(entry);
      }
    }
    await pc.setLocalDescription(await pc.createOffer());
    return { sdp: pc.localDescription.sdp, mids };
  }

  /** Forget the transceivers of `keys` without negotiation (their tracks were force-closed at the SFU). */
  dropPushed(keys) {
    for (const key of keys) {
      const entry = this.local.get(key);
      if (entry && entry.transceiver) {
        entry.transceiver.stop();
        this.detach(entry);
      }
    }
    return true;
  }

  // ---- pull -------------------------------------------------------------------------------------------------

  /** Apply the SFU's offer; `mids` maps each new mid to the tile key its track belongs to. Returns our answer. */
  async answerPull(sdp, mids) {
    const pc = this.pc('pull');
    for (const [mid, key] of Object.entries(mids)) this.pullMids.set(mid, key);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    for (const transceiver of pc.getTransceivers()) {
      if (mids[transceiver.mid] && transceiver.direction === 'inactive') transceiver.direction = 'recvonly';
    }
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    // A transceiver whose track event already fired before the mapping existed (re-offers) is attached here.
    for (const transceiver of pc.getTransceivers()) {
      const key = this.pullMids.get(transceiver.mid);
      if (key && transceiver.receiver.track && !trackStore.get(`remote:${key}`)) {
        trackStore.set(`remote:${key}`, transceiver.receiver.track);
      }
    }
    return pc.localDescription.sdp;
  }

  /** Stop receiving on `mids` and return an offer for a negotiated close. */
  async createPullCloseOffer(mids) {
    const pc = this.pc('pull');
    for (const transceiver of pc.getTransceivers()) {
      if (mids.includes(transceiver.mid)) {
        const key = this.pullMids.get(transceiver.mid);
        if (key) trackStore.set(`remote:${key}`, null);
        this.pullMids.delete(transceiver.mid);
        // Inactive rather than stopped: the embedded SFU answers a closed m-line as inactive inside BUNDLE, which
        // Chromium rejects for a stopped (port 0, unbundled) one. An inactive slot is reused by a later pull.
        transceiver.direction = 'inactive';
      }
    }
    await pc.setLocalDescription(await pc.createOffer());
    return pc.localDescription.sdp;
  }

  /** Forget pulled mids without negotiation (their session is being closed by force). */
  dropPulled(mids) {
    for (const mid of mids) {
      const key = this.pullMids.get(mid);
      if (key) trackStore.set(`remote:${key}`, null);
      this.pullMids.delete(mid);
    }
    return true;
  }

  async applyPullAnswer(sdp) {
    await this.pc('pull').setRemoteDescription({ type: 'answer', sdp });
    return true;
  }

  // ---- stats ------------------------------------------------------------------------------------------------

  /** Per tile key: packets received/lost, frames decoded, audio energy; plus outbound loss of our own tracks. */
  async stats() {
    const result = { inbound: {}, outbound: {}, states: this.connectionStates() };
    const pull = this.pcs.pull;
    if (pull) {
      const reports = await pull.getStats();
      const midByTrack = {};
      for (const transceiver of pull.getTransceivers()) midByTrack[transceiver.receiver.track.id] = transceiver.mid;
      for (const report of reports.values()) {
        if (report.type !== 'inbound-rtp') continue;
        const mid = report.mid || midByTrack[report.trackIdentifier];
        const key = this.pullMids.get(mid);
        if (!key) continue;
        result.inbound[key] = {
          kind: report.kind,
          packetsReceived: report.packetsReceived || 0,
          packetsLost: report.packetsLost || 0,
          framesDecoded: report.framesDecoded || 0,
          totalAudioEnergy: report.totalAudioEnergy || 0,
          jitter: report.jitter || 0,
        };
      }
    }
    const push = this.pcs.push;
    if (push) {
      const reports = await push.getStats();
      for (const report of reports.values()) {
        if (report.type === 'remote-inbound-rtp') {
          const sent = reports.get(report.localId);
          result.outbound[report.localId || report.id] = {
            packetsSent: (sent && sent.packetsSent) || 0,
            packetsLost: report.packetsLost || 0,
            fractionLost: report.fractionLost || 0,
            rtt: report.roundTripTime || 0,
          };
        }
      }
    }
    return result;
  }

  // ---- quality ----------------------------------------------------------------------------------------------

  /** Sample stats every second while a peer connection exists: tile levels go to `qualityStore`, and Python hears
   * `quality` {degraded, inboundLoss, outboundLoss} only when the page's connection degrades or recovers. */
  watchQuality() {
    if (this.qualityTimer) return;
    let busy = false;
    this.qualityTimer = setInterval(async () => {
      if (busy) return; // a slow getStats() never piles up
      if (!Object.keys(this.pcs).length) {
        this.stopQuality();
        return;
      }
      busy = true;
      try {
        const change = this.quality.update(performance.now(), await this.stats());
        if (change) this.emit('quality', change);
      } catch {
        // a peer connection closed mid-read: the next sample starts over
      } finally {
        busy = false;
      }
    }, QUALITY_INTERVAL_MS);
  }

  stopQuality() {
    clearInterval(this.qualityTimer);
    this.qualityTimer = null;
    this.quality.clear();
  }

  close() {
    for (const key of [...this.local.keys()]) this.closeLocal(key);
    this.reset();
    this.stopQuality();
    return true;
  }
}

function preferCodec(transceiver, mimeType) {
  if (!globalThis.RTCRtpSender || !RTCRtpSender.getCapabilities || !transceiver.setCodecPreferences) return;
  const codecs = RTCRtpSender.getCapabilities('video').codecs;
  const preferred = codecs.filter((c) => c.mimeType === mimeType);
  const rest = codecs.filter((c) => c.mimeType !== mimeType && /rtx|red|ulpfec/i.test(c.mimeType));
  if (preferred.length) transceiver.setCodecPreferences([...preferred, ...rest]);
}

function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== 'complete') return;
      pc.removeEventListener('icegatheringstatechange', done);
      resolve();
    };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, GATHER_TIMEOUT_MS);
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
