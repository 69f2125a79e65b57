// The figures behind one tile, for the stats panel: read on demand from the page's MediaClient (never on a timer of
// its own; the panel polls only while it is open). No DOM.
//
// `readTrack(client, videoKey)` takes a snapshot of cumulative counters for "remote:<tile key>" (what this page
// receives: inbound-rtp of the pull connection) or "local:<key>" (what this page sends: outbound-rtp and the SFU's
// receiver report of it). `figures(previous, current)` turns two snapshots into rates.

/** A snapshot `{at, direction, ...counters}` of the video behind `videoKey`, or null when there is none. */
export async function readTrack(client, videoKey) {
  if (!client || !videoKey) return null;
  const [scope, key] = splitKey(videoKey);
  if (scope === 'remote') return readInbound(client, key);
  if (scope === 'local') return readOutbound(client, key);
  return null;
}

function splitKey(videoKey) {
  const at = videoKey.indexOf(':');
  return at < 0 ? [videoKey, ''] : [videoKey.slice(0, at), videoKey.slice(at + 1)];
}

async function readInbound(client, key) {
  const pc = client.pcs && client.pcs.pull;
  if (!pc) return null;
  const transceiver = pc.getTransceivers().find((t) => t.mid !== null && client.pullMids.get(t.mid) === key);
  if (!transceiver) return null;
  const reports = await transceiver.receiver.getStats();
  const snapshot = { at: performance.now(), direction: 'in' };
  for (const report of reports.values()) {
    if (report.type === 'inbound-rtp' && report.kind === 'video') {
      Object.assign(snapshot, {
        width: report.frameWidth || 0,
        height: report.frameHeight || 0,
        framesPerSecond: report.framesPerSecond,
        frames: report.framesDecoded || 0,
        bytes: report.bytesReceived || 0,
        packets: report.packetsReceived || 0,
        packetsLost: report.packetsLost || 0,
        jitter: report.jitter,
        freezeCount: report.freezeCount || 0,
        freezeSeconds: report.totalFreezesDuration || 0,
        codecId: report.codecId,
        transportId: report.transportId,
      });
    }
  }
  if (snapshot.bytes === undefined) return null;
  snapshot.codec = codecName(reports, snapshot.codecId);
  snapshot.rtt = pairRtt(reports, snapshot.transportId);
  return snapshot;
}

async function readOutbound(client, key) {
  const entry = client.local && client.local.get(key);
  if (!entry) return null;
  const settings = (entry.track && entry.track.getSettings && entry.track.getSettings()) || {};
  const snapshot = { at: performance.now(), direction: 'out', width: settings.width || 0, height: settings.height || 0 };
  if (!entry.transceiver) return { ...snapshot, framesPerSecond: settings.frameRate, codec: null };
  const reports = await entry.transceiver.sender.getStats();
  for (const report of reports.values()) {
    if (report.type === 'outbound-rtp' && report.kind === 'video') {
      Object.assign(snapshot, {
        width: report.frameWidth || snapshot.width,
        height: report.frameHeight || snapshot.height,
        framesPerSecond: report.framesPerSecond,
        frames: report.framesEncoded || 0,
        bytes: report.bytesSent || 0,
        packets: report.packetsSent || 0,
        codecId: report.codecId,
        transportId: report.transportId,
        limitation: report.qualityLimitationReason || 'none',
      });
    } else if (report.type === 'remote-inbound-rtp' && report.kind === 'video') {
      Object.assign(snapshot, { packetsLost: report.packetsLost || 0, jitter: report.jitter, rtt: report.roundTripTime });
    }
  }
  snapshot.codec = codecName(reports, snapshot.codecId);
  if (snapshot.rtt === undefined) snapshot.rtt = pairRtt(reports, snapshot.transportId);
  return snapshot;
}

function codecName(reports, codecId) {
  const codec = codecId && reports.get(codecId);
  return codec ? codec.mimeType.replace(/^video\//, '') : null;
}

/** RTT (s) of the transport's selected candidate pair (STUN consent checks), or undefined. */
function pairRtt(reports, transportId) {
  const transport = transportId && reports.get(transportId);
  let pair = transport && transport.selectedCandidatePairId && reports.get(transport.selectedCandidatePairId);
  if (!pair) {
    for (const report of reports.values()) {
      if (report.type === 'candidate-pair' && report.nominated && report.state === 'succeeded') pair = report;
    }
  }
  return pair ? pair.currentRoundTripTime : undefined;
}

/**
 * Rates between two snapshots (the previous may be null): `{direction, width, height, fps, kbps, lossPct, loss,
 * jitterMs, rttMs, freezes, freezeSeconds, codec, limitation}`; a figure that cannot be known yet is null.
 */
export function figures(previous, current) {
  if (!current) return null;
  const same = previous && previous.direction === current.direction && current.at > previous.at
    && (current.bytes || 0) >= (previous.bytes || 0);
  const seconds = same ? (current.at - previous.at) / 1000 : 0;
  let kbps = null;
  let fps = number(current.framesPerSecond);
  let loss = null;
  if (same && seconds > 0) {
    kbps = (8 * ((current.bytes || 0) - (previous.bytes || 0))) / seconds / 1000;
    if (fps === null && current.frames !== undefined) fps = Math.max(0, (current.frames - previous.frames) / seconds);
    const lost = Math.max(0, (current.packetsLost || 0) - (previous.packetsLost || 0));
    const packets = Math.max(0, (current.packets || 0) - (previous.packets || 0));
    // Received packets plus lost ones were expected; for what we send, the SFU's report counts lost among sent.
    const expected = current.direction === 'in' ? packets + lost : packets;
    loss = expected > 0 ? Math.min(1, lost / expected) : null;
  }
  return {
    direction: current.direction,
    width: current.width || 0,
    height: current.height || 0,
    fps: fps === null ? null : Math.round(fps * 10) / 10,
    kbps: kbps === null ? null : Math.round(kbps),
    loss,
    lossPct: loss === null ? null : Math.round(loss * 1000) / 10,
    jitterMs: number(current.jitter) === null ? null : Math.round(current.jitter * 10000) / 10,
    rttMs: number(current.rtt) === null ? null : Math.round(current.rtt * 10000) / 10,
    freezes: current.direction === 'in' ? current.freezeCount || 0 : null,
    freezeSeconds: current.direction === 'in' ? Math.round((current.freezeSeconds || 0) * 10) / 10 : null,
    codec: current.codec || null,
    limitation: current.limitation || null,
  };
}

function number(value) {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
