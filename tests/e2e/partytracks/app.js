// The browser side: the real partytracks client, driven by tests/e2e/test_partytracks.py through `window.harness`.
import { PartyTracks } from "partytracks/client";
import { BehaviorSubject, of } from "rxjs";

const clients = [];
const pushes = new Map();
const pulls = new Map();
let nextId = 1;
let cameras = null;

async function videoInputs() {
  if (!cameras) {
    const probe = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    probe.getTracks().forEach((t) => t.stop());
    cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  }
  return cameras;
}

function client(index) {
  while (clients.length <= index) {
    const pt = new PartyTracks({ prefix: "/partytracks", iceServers: [] });
    const state = { pt, pc: null, sessionId: null, offers: [] };
    pt.session$.subscribe(({ peerConnection, sessionId }) => {
      state.pc = peerConnection;
      state.sessionId = sessionId;
      const original = peerConnection.createOffer.bind(peerConnection);
      peerConnection.createOffer = async (...args) => {
        const offer = await original(...args);
        state.offers.push(offer.sdp);
        return offer;
      };
    });
    clients.push(state);
  }
  return clients[index];
}

async function inboundStats(pc, track) {
  const transceiver = pc.getTransceivers().find((t) => t.receiver.track === track);
  if (!transceiver) return null;
  let found = null;
  (await transceiver.receiver.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") found = s;
  });
  return {
    mid: transceiver.mid,
    framesDecoded: found?.framesDecoded ?? 0,
    frameWidth: found?.frameWidth ?? 0,
    frameHeight: found?.frameHeight ?? 0,
    packetsReceived: found?.packetsReceived ?? 0,
    bytesReceived: found?.bytesReceived ?? 0,
    totalSamplesDecoded: found?.concealedSamples !== undefined ? (found.totalSamplesReceived ?? 0) : 0,
  };
}

window.harness = {
  ready: true,
  async push({ client: c = 0, kind = "video", camera = 0, width, height, encodings } = {}) {
    const state = client(c);
    let track;
    if (kind === "audio") {
      track = (await navigator.mediaDevices.getUserMedia({ audio: true })).getAudioTracks()[0];
    } else {
      const cams = await videoInputs();
      const video = { deviceId: { exact: cams[camera].deviceId } };
      if (width) video.width = { exact: width };
      if (height) video.height = { exact: height };
      track = (await navigator.mediaDevices.getUserMedia({ video })).getVideoTracks()[0];
    }
    const id = nextId++;
    const entry = { track, kind, metadata: null, error: null };
    const options = encodings ? { sendEncodings$: of(encodings) } : {};
    entry.sub = state.pt.push(of(track), options).subscribe({
      next: (m) => (entry.metadata = m),
      error: (e) => (entry.error = String(e)),
    });
    pushes.set(id, entry);
    return id;
  },
  // Several unsubscribed in one task: partytracks batches their closes into one tracks/close (and 0.0.54 stops only
  // the first transceiver of the batch itself), as Orange's hospital page does on every camera change.
  unpushMany(ids) {
    for (const id of ids) this.unpush(id);
  },
  unpullMany(ids) {
    for (const id of ids) this.unpull(id);
  },
  pushed(id) {
    const entry = pushes.get(id);
    return entry.error ? { error: entry.error } : entry.metadata;
  },
  unpush(id) {
    const entry = pushes.get(id);
    entry.sub.unsubscribe();
    entry.track.stop();
    pushes.delete(id);
  },
  pull({ client: c = 0, metadata, kind = "video", rid } = {}) {
    const state = client(c);
    const id = nextId++;
    const entry = { track: null, error: null, rid: rid === undefined ? null : new BehaviorSubject(rid), state };
    const element = document.createElement(kind);
    element.autoplay = true;
    element.muted = true;
    element.playsInline = true;
    document.getElementById("media").appendChild(element);
    entry.element = element;
    const options = entry.rid ? { simulcast: { preferredRid$: entry.rid } } : {};
    entry.sub = state.pt.pull(of(metadata), options).subscribe({
      next: (track) => {
        entry.track = track;
        element.srcObject = new MediaStream([track]);
        element.play().catch(() => {});
      },
      error: (e) => (entry.error = String(e)),
    });
    pulls.set(id, entry);
    return id;
  },
  setRid(id, rid) {
    pulls.get(id).rid.next(rid);
  },
  unpull(id) {
    const entry = pulls.get(id);
    entry.sub.unsubscribe();
    entry.element.remove();
    pulls.delete(id);
  },
  async pulled(id) {
    const entry = pulls.get(id);
    if (entry.error) return { error: entry.error };
    if (!entry.track || !entry.state.pc) return null;
    return inboundStats(entry.state.pc, entry.track);
  },
  session(c = 0) {
    const state = client(c);
    const pc = state.pc;
    return {
      sessionId: state.sessionId,
      connectionState: pc?.connectionState,
      signalingState: pc?.signalingState,
      transceivers: (pc?.getTransceivers() ?? []).map((t) => ({
        mid: t.mid,
        direction: t.direction,
        currentDirection: t.currentDirection,
      })),
      localSdp: pc?.localDescription?.sdp,
      remoteSdp: pc?.remoteDescription?.sdp,
      offers: state.offers,
    };
  },
  _pc(c = 0) {
    return client(c).pc;
  },
  history(c = 0) {
    return client(c).pt.history.entries;
  },
};
