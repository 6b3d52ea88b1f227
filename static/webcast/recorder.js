/* The rapporteur's side of the live media path: record and send.
 *
 *   const pub = new LivePublisher(mediaStream, { socket, lectureId });
 *   pub.start();  …  pub.stats();  …  pub.stop();
 *
 * Two MediaRecorders run side by side on the same tracks: "av" (VP8 or VP9 + Opus, for
 * the bridge points and the recording) and "audio" (Opus only, for sites on weak links).
 * Each cuts its WebM every `timesliceMs` and sends the chunk with `media.publish` on the
 * /media socket, numbered, waiting for the hub's acks in order with a bounded number in
 * flight. When the link cannot keep up (too many chunks waiting) or the hub refuses a
 * chunk, the recorder restarts: the waiting chunks are dropped and the new stream opens
 * with a header and a keyframe, which the hub turns into a clean resync for every site
 * (and the recording keeps one timeline). After a reconnection the same happens, since
 * the hub's new socket expects a stream that starts with a header.
 *
 * Sequence numbers start at Date.now() and grow by one per chunk, so a new publisher on
 * the same socket (another camera, the screen) always continues above the previous one.
 */

const AV_TYPES = [
  "video/webm;codecs=vp8,opus",
  "video/webm;codecs=vp9,opus",
  "video/webm;codecs=vp8",
  "video/webm",
];
const AUDIO_TYPES = ["audio/webm;codecs=opus", "audio/webm"];
// refusals that a restart cannot cure: stop sending on that track.
const FATAL = new Set(["lecture.not_live", "lecture.unknown", "media.not_rapporteur", "media.superseded",
                       "auth.bad_token", "unauthenticated"]);
const RATE_WINDOW_MS = 5000;

function pickType(candidates) {
  if (typeof MediaRecorder === "undefined") return null;
  for (const type of candidates) {
    if (!MediaRecorder.isTypeSupported || MediaRecorder.isTypeSupported(type)) return type;
  }
  return null;
}

class TrackSender {
  constructor(owner, track, stream, mimeType, recorderOptions) {
    this.owner = owner;
    this.track = track;
    this.stream = stream;
    this.mimeType = mimeType;
    this.recorderOptions = recorderOptions;
    this.recorder = null;
    this.gen = 0;            // recorder generation: chunks and acks of an older one are ignored
    this.queue = [];         // {gen, blob} or {end: true}
    this.inFlight = 0;
    this.draining = false;
    this.seq = Date.now();
    this.state = "idle";
    this.startedAt = null;   // Date.now() when the current recorder started (its time 0)
    this.s = { chunks: 0, sent_bytes: 0, acked_bytes: 0, dropped: 0, restarts: 0, errors: 0,
               last_error: null, rtt_ms: null };
    this.acks = [];          // [time, bytes] of recent acks, for the bitrate
  }

  start() {
    if (this.state === "refused" || this.state === "stopped") return;
    this.gen += 1;
    const gen = this.gen;
    let recorder;
    try {
      recorder = new MediaRecorder(this.stream, { mimeType: this.mimeType, ...this.recorderOptions });
    } catch (err) {
      this.state = "error";
      this.s.last_error = String(err && err.name || err);
      return;
    }
    this.recorder = recorder;
    recorder.ondataavailable = (e) => {
      if (gen !== this.gen || !e.data || !e.data.size) return;
      this.queue.push({ gen, blob: e.data });
      this._backpressure();
      this._drain();
    };
    recorder.onerror = (e) => {
      if (gen !== this.gen) return;
      this.s.errors += 1;
      this.s.last_error = "recorder." + (e.error && e.error.name || "error");
      this.restart();
    };
    recorder.onstop = () => {
      if (gen === this.gen && this.state === "stopping") {
        this.queue.push({ end: true });
        this._drain();
      }
    };
    this.startedAt = Date.now();
    recorder.start(this.owner.timesliceMs);
    this.state = "recording";
  }

  /** Drop what waits and begin a new stream (a header and a keyframe) on the hub. */
  restart() {
    if (this.state !== "recording" && this.state !== "offline") return;
    this.s.restarts += 1;
    const old = this.recorder;
    this.gen += 1;  // the old recorder's last chunk and the old acks are ignored
    this.s.dropped += this.queue.filter((item) => item.blob).length;
    this.queue = [];
    this.inFlight = 0;
    if (old && old.state !== "inactive") {
      try { old.stop(); } catch (err) { /* already stopped */ }
    }
    if (this.owner.socket.connected) this.start();
    else this.state = "offline";
  }

  stop() {
    if (this.state === "recording" && this.recorder && this.recorder.state !== "inactive") {
      this.state = "stopping";
      try { this.recorder.stop(); } catch (err) { this.state = "stopped"; }
    } else {
      this.state = "stopped";
    }
  }

  onDisconnect() {
    this.inFlight = 0;  // their acks are lost with the socket
    if (this.state === "recording") {
      this.s.dropped += this.queue.filter((item) => item.blob).length;
      this.queue = [];
      this.state = "offline";
    }
  }

  onConnect() {
    if (this.state === "offline" || this.state === "recording") {
      this.state = "recording";
      this.restart();  // the hub's new socket wants a stream that starts with a header
    }
  }

  _backpressure() {
    const waiting = this.queue.length + this.inFlight;
    if (waiting > this.owner.maxQueued) {
      // the link is slower than the stream: keep the newest, resync at the next keyframe.
      this.restart();
    }
  }

  async _drain() {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length && this.inFlight < this.owner.maxInFlight) {
        const socket = this.owner.socket;
        if (!socket.connected) {
          if (this.state === "recording") this.onDisconnect();
          break;
        }
        const item = this.queue.shift();
        if (item.end) {
          this._sendEnd();
          continue;
        }
        if (item.gen !== this.gen) continue;
        const data = await item.blob.arrayBuffer();
        if (item.gen !== this.gen) continue;
        this._send(item.gen, data);
      }
    } finally {
      this.draining = false;
    }
  }

  _send(gen, data) {
    this.seq += 1;
    const seq = this.seq;
    const sentAt = performance.now();
    this.inFlight += 1;
    this.s.chunks += 1;
    this.s.sent_bytes += data.byteLength;
    const payload = { lecture_id: this.owner.lectureId, track: this.track, seq, data };
    this.owner.socket.timeout(this.owner.ackTimeoutMs).emit("media.publish", payload, (err, ack) => {
      if (gen !== this.gen) return;  // an older stream's ack: its count was reset
      this.inFlight = Math.max(0, this.inFlight - 1);
      if (err || !ack) {
        this.s.errors += 1;
        this.s.last_error = "client.timeout";
        this.restart();
        return;
      }
      if (!ack.ok) {
        const code = (ack.error && ack.error.code) || "error";
        this.s.errors += 1;
        this.s.last_error = code;
        if (FATAL.has(code)) {
          this.state = "refused";
          this.gen += 1;
          this.queue = [];
          if (this.recorder && this.recorder.state !== "inactive") this.recorder.stop();
          this.owner._changed();
          return;
        }
        this.restart();
        return;
      }
      const now = performance.now();
      const rtt = now - sentAt;
      this.s.rtt_ms = this.s.rtt_ms == null ? rtt : Math.round(0.8 * this.s.rtt_ms + 0.2 * rtt);
      this.s.acked_bytes += data.byteLength;
      this.acks.push([now, data.byteLength]);
      this._drain();
    });
  }

  _sendEnd() {
    const socket = this.owner.socket;
    if (socket.connected) {
      socket.timeout(this.owner.ackTimeoutMs).emit("media.end",
        { lecture_id: this.owner.lectureId, track: this.track, seq: this.seq }, () => {});
    }
    this.state = "stopped";
  }

  stats() {
    const now = performance.now();
    while (this.acks.length && now - this.acks[0][0] > RATE_WINDOW_MS) this.acks.shift();
    const bytes = this.acks.reduce((sum, a) => sum + a[1], 0);
    return {
      state: this.state, mime: this.mimeType, in_flight: this.inFlight, queued: this.queue.length,
      bitrate_kbps: Math.round((bytes * 8) / RATE_WINDOW_MS), started_at: this.startedAt, ...this.s,
    };
  }
}

export class LivePublisher {
  /**
   * @param {MediaStream} mediaStream camera (or screen) and microphone
   * @param {{socket, lectureId: number, timesliceMs?: number, videoBitsPerSecond?: number,
   *          audioBitsPerSecond?: number, maxInFlight?: number, maxQueued?: number,
   *          ackTimeoutMs?: number, keyFrameIntervalMs?: number, onState?: Function}} options
   */
  constructor(mediaStream, {
    socket, lectureId, timesliceMs = 500, videoBitsPerSecond = 1_200_000, audioBitsPerSecond = 64_000,
    maxInFlight = 4, maxQueued = 12, ackTimeoutMs = 15000, keyFrameIntervalMs = 1000, onState = null,
  } = {}) {
    if (!mediaStream) throw new Error("LivePublisher: a MediaStream is required");
    if (!socket) throw new Error("LivePublisher: a Socket.IO socket on /media is required");
    this.stream = mediaStream;
    this.socket = socket;
    this.lectureId = Number(lectureId);
    this.timesliceMs = timesliceMs;
    this.maxInFlight = maxInFlight;
    this.maxQueued = maxQueued;
    this.ackTimeoutMs = ackTimeoutMs;
    this.onState = onState;
    this.tracks = {};
    const video = mediaStream.getVideoTracks().length > 0;
    const audioTracks = mediaStream.getAudioTracks();
    const avType = pickType(video ? AV_TYPES : AUDIO_TYPES);
    if (!avType) throw new Error("LivePublisher: this browser cannot record WebM");
    // keyframes every second: a late joiner (or a site that jumped) starts within ~1 s.
    const avOptions = { videoBitsPerSecond, audioBitsPerSecond, videoKeyFrameIntervalDuration: keyFrameIntervalMs };
    this.tracks.av = new TrackSender(this, "av", mediaStream, avType, avOptions);
    const audioType = pickType(AUDIO_TYPES);
    if (audioTracks.length && audioType) {
      this.tracks.audio = new TrackSender(this, "audio", new MediaStream(audioTracks), audioType, { audioBitsPerSecond });
    }
    this._onConnect = () => { this._each((t) => t.onConnect()); this._changed(); };
    this._onDisconnect = () => { this._each((t) => t.onDisconnect()); this._changed(); };
    this.running = false;
  }

  _each(fn) { Object.values(this.tracks).forEach(fn); }

  _changed() {
    if (typeof this.onState === "function") {
      try { this.onState(this.stats()); } catch (err) { /* the page's problem */ }
    }
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.socket.on("connect", this._onConnect);
    this.socket.on("disconnect", this._onDisconnect);
    this._each((t) => {
      t.start();
      if (!this.socket.connected) t.onDisconnect();
    });
    this._changed();
  }

  stop() {
    if (!this.running) return;
    this.running = false;
    this.socket.off("connect", this._onConnect);
    this.socket.off("disconnect", this._onDisconnect);
    this._each((t) => t.stop());
    this._changed();
  }

  /** {state, mime, sent_bytes, acked_bytes, bitrate_kbps, chunks, in_flight, dropped,
   *   restarts, errors, last_error, rtt_ms, started_at, tracks: {av: {...}, audio: {...}}} */
  stats() {
    const tracks = {};
    for (const [name, t] of Object.entries(this.tracks)) tracks[name] = t.stats();
    const av = tracks.av || {};
    const sum = (key) => Object.values(tracks).reduce((n, t) => n + (t[key] || 0), 0);
    let state = av.state || "idle";
    if (!this.running && state !== "refused") state = "stopped";
    else if (!this.socket.connected) state = "offline";
    return {
      state, mime: av.mime, sent_bytes: sum("sent_bytes"), acked_bytes: sum("acked_bytes"),
      bitrate_kbps: sum("bitrate_kbps"), chunks: sum("chunks"), in_flight: sum("in_flight"),
      dropped: sum("dropped"), restarts: sum("restarts"), errors: sum("errors"),
      last_error: av.last_error || (tracks.audio && tracks.audio.last_error) || null,
      rtt_ms: av.rtt_ms, started_at: av.started_at, tracks,
    };
  }
}

export default LivePublisher;
