/* A bridge point's side of the live media path: receive and play.
 *
 *   const player = new LivePlayer(videoElement, { socket, lectureId, track: "av" });
 *   player.start();  …  player.setTrack("audio");  …  player.stats();  …  player.stop();
 *
 * The player subscribes on the /media socket (again after every reconnection), acks
 * every `media.data` at once (the hub's per-site queue counts on it), and plays through
 * Media Source Extensions. Each stream begins with an init segment (the hub sends init +
 * the latest keyframe cluster to a joiner); every init opens a fresh MediaSource, whose
 * codecs come from the hub (`mime`) or from the init segment itself. The timeline does
 * not start at 0 after a late join or a jump, so the player seeks into what is buffered
 * and keeps near the live edge: a little faster playback while the buffer never ran low
 * in the last seconds (`marginS`), a jump when more than `maxLatencyS` behind. Old
 * buffer is trimmed.
 *
 * stats() → {state, buffer_s, bitrate_kbps, dropped, received, rtt_ms, latency_s, track,
 *            jumps, muted}
 * state: idle | connecting | waiting | buffering | playing | stalled | ended | error | stopped
 */

const TICK_MS = 250;
const PING_MS = 5000;
const RATE_WINDOW_MS = 5000;
const STALL_MS = 6000;
const RESUBSCRIBE_MS = 5000;
const PACE_WINDOW_MS = 3000;

function sniffMime(bytes) {
  // CodecIDs are plain ASCII in the Tracks element of the init segment.
  const text = String.fromCharCode.apply(null, new Uint8Array(bytes.buffer || bytes, bytes.byteOffset || 0,
                                                              Math.min(bytes.byteLength, 4096)));
  const codecs = [];
  if (text.includes("V_VP9")) codecs.push("vp9");
  else if (text.includes("V_VP8")) codecs.push("vp8");
  if (text.includes("A_OPUS")) codecs.push("opus");
  else if (text.includes("A_VORBIS")) codecs.push("vorbis");
  const video = codecs.some((c) => c.startsWith("vp"));
  return `${video ? "video" : "audio"}/webm; codecs="${codecs.join(",")}"`;
}

export class LivePlayer {
  /**
   * @param {HTMLVideoElement} videoEl
   * @param {{socket, lectureId: number, track?: "av"|"audio", maxLatencyS?: number,
   *          targetLatencyS?: number, keepBufferS?: number, onState?: Function}} options
   */
  constructor(videoEl, { socket, lectureId, track = "av", maxLatencyS = 3, targetLatencyS = 0.5,
                         marginS = 0.25, keepBufferS = 20, onState = null } = {}) {
    if (!videoEl) throw new Error("LivePlayer: a <video> element is required");
    if (!socket) throw new Error("LivePlayer: a Socket.IO socket on /media is required");
    if (typeof MediaSource === "undefined") throw new Error("LivePlayer: Media Source Extensions are not available");
    this.video = videoEl;
    this.socket = socket;
    this.lectureId = Number(lectureId);
    this.track = track;
    this.maxLatencyS = maxLatencyS;
    this.targetLatencyS = targetLatencyS;
    this.marginS = marginS;
    this.history = [];
    this.keepBufferS = keepBufferS;
    this.onState = onState;
    this.state = "idle";
    this.running = false;
    this.ms = null;
    this.sb = null;
    this.mime = null;
    this.queue = [];
    this.lastSeq = null;
    this.lastDataAt = 0;
    this.subscribed = false;
    this.subscribing = false;
    this.s = { received: 0, received_bytes: 0, dropped: 0, jumps: 0, resets: 0, rtt_ms: null, errors: 0,
               last_error: null, forced_audio_only: false };
    this.rx = [];
    this._timers = [];
    this._onData = (msg, ack) => this._data(msg, ack);
    this._onEnded = (msg) => { if (msg && msg.lecture_id === this.lectureId) this._setState("ended"); };
    this._onConnect = () => { this.subscribed = false; this._subscribe(); };
    this._onDisconnect = () => { this.subscribed = false; this._setState("connecting"); };
  }

  // the interface -----------------------------------------------------------------------
  start() {
    if (this.running) return;
    this.running = true;
    this.socket.on("media.data", this._onData);
    this.socket.on("media.ended", this._onEnded);
    this.socket.on("connect", this._onConnect);
    this.socket.on("disconnect", this._onDisconnect);
    this._timers.push(setInterval(() => this._tick(), TICK_MS));
    this._timers.push(setInterval(() => this._ping(), PING_MS));
    this._setState(this.socket.connected ? "waiting" : "connecting");
    if (this.socket.connected) this._subscribe();
  }

  stop() {
    if (!this.running) return;
    this.running = false;
    this.socket.off("media.data", this._onData);
    this.socket.off("media.ended", this._onEnded);
    this.socket.off("connect", this._onConnect);
    this.socket.off("disconnect", this._onDisconnect);
    this._timers.forEach(clearInterval);
    this._timers = [];
    if (this.socket.connected) this.socket.emit("media.unsubscribe", {});
    this._teardown();
    this.video.removeAttribute("src");
    try { this.video.load(); } catch (err) { /* nothing to unload */ }
    this._setState("stopped");
  }

  /** "av" for sound and picture, "audio" for sound only (a weak link). */
  setTrack(track) {
    if (track !== "av" && track !== "audio") throw new Error("LivePlayer: track must be 'av' or 'audio'");
    if (track === this.track) return;
    this.track = track;
    this.subscribed = false;
    this._teardown();
    this._subscribe();
  }

  stats() {
    const now = performance.now();
    while (this.rx.length && now - this.rx[0][0] > RATE_WINDOW_MS) this.rx.shift();
    const bytes = this.rx.reduce((n, r) => n + r[1], 0);
    const end = this._bufferedEnd();
    const buffer = end == null ? 0 : Math.max(0, end - this.video.currentTime);
    return {
      state: this.state,
      buffer_s: Math.round(buffer * 100) / 100,
      bitrate_kbps: Math.round((bytes * 8) / RATE_WINDOW_MS),
      dropped: this.s.dropped,
      received: this.s.received,
      rtt_ms: this.s.rtt_ms,
      latency_s: Math.round(buffer * 100) / 100,
      track: this.track,
      jumps: this.s.jumps,
      resets: this.s.resets,
      errors: this.s.errors,
      last_error: this.s.last_error,
      forced_audio_only: this.s.forced_audio_only,
      muted: this.video.muted,
      current_time: this.video.currentTime,
    };
  }

  // subscribing ---------------------------------------------------------------------------
  _subscribe() {
    if (!this.running || this.subscribing || !this.socket.connected) return;
    this.subscribing = true;
    this.lastSeq = null;
    const track = this.track;
    this.socket.timeout(10000).emit("media.subscribe", { lecture_id: this.lectureId, track }, (err, ack) => {
      this.subscribing = false;
      if (!this.running) return;
      if (err || !ack || !ack.ok) {
        const code = err ? "client.timeout" : (ack && ack.error && ack.error.code) || "error";
        this.s.errors += 1;
        this.s.last_error = code;
        if (code === "lecture.not_live") { this._setState("ended"); return; }
        this._setState("error");
        setTimeout(() => this._subscribe(), RESUBSCRIBE_MS);
        return;
      }
      this.subscribed = true;
      this.s.forced_audio_only = !!ack.forced_audio_only;
      if (ack.track && ack.track !== this.track) this.track = ack.track;  // the control room decides
      if (this.state !== "playing" && this.state !== "buffering") this._setState("waiting");
    });
  }

  _resubscribe(reason) {
    this.s.resets += 1;
    this.s.last_error = reason;
    this.subscribed = false;
    this._teardown();
    if (this.socket.connected) this.socket.emit("media.unsubscribe", {});
    this._subscribe();
  }

  // receiving -----------------------------------------------------------------------------
  _data(msg, ack) {
    if (typeof ack === "function") ack();  // taken: the hub may send the next one
    if (!this.running || !msg || msg.track !== this.track || !msg.data) return;
    const bytes = msg.data instanceof ArrayBuffer ? new Uint8Array(msg.data) : new Uint8Array(msg.data.buffer || msg.data);
    const now = performance.now();
    this.lastDataAt = now;
    this.s.received += 1;
    this.s.received_bytes += bytes.byteLength;
    this.rx.push([now, bytes.byteLength]);
    if (!msg.init && this.lastSeq != null && msg.seq > this.lastSeq + 1) this.s.dropped += msg.seq - this.lastSeq - 1;
    this.lastSeq = msg.seq;
    if (msg.init) {
      this._open(msg.mime || sniffMime(bytes), bytes);
      return;
    }
    if (!this.ms) { this.s.dropped += 1; return; }  // nothing to append to until an init
    this.queue.push(bytes);
    this._append();
  }

  _open(mime, init) {
    this._teardown();
    if (!MediaSource.isTypeSupported(mime)) {
      const sniffed = sniffMime(init);
      if (!MediaSource.isTypeSupported(sniffed)) {
        this.s.last_error = "unsupported:" + mime;
        this._setState("error");
        return;
      }
      mime = sniffed;
    }
    const ms = new MediaSource();
    this.ms = ms;
    this.mime = mime;
    this.queue = [init];
    this.seeked = false;
    const url = URL.createObjectURL(ms);
    ms.addEventListener("sourceopen", () => {
      URL.revokeObjectURL(url);
      if (this.ms !== ms) return;
      try {
        const sb = ms.addSourceBuffer(mime);
        sb.mode = "segments";
        sb.addEventListener("updateend", () => { if (this.sb === sb) this._append(); });
        sb.addEventListener("error", () => { if (this.sb === sb) this._resubscribe("sourcebuffer.error"); });
        this.sb = sb;
        this._append();
      } catch (err) {
        this.s.errors += 1;
        this._resubscribe("addsourcebuffer:" + (err && err.name));
      }
    }, { once: true });
    this.video.src = url;
    this._setState("buffering");
  }

  _append() {
    const sb = this.sb;
    if (!sb || sb.updating || !this.queue.length || !this.ms || this.ms.readyState !== "open") return;
    let data = this.queue[0];
    if (this.queue.length > 1) {  // one append for everything waiting
      const size = this.queue.reduce((n, b) => n + b.byteLength, 0);
      data = new Uint8Array(size);
      let at = 0;
      for (const b of this.queue) { data.set(b, at); at += b.byteLength; }
    }
    try {
      sb.appendBuffer(data);
      this.queue = [];
    } catch (err) {
      if (err && err.name === "QuotaExceededError") {
        this._trim(true);
        return;  // the next updateend (or tick) retries
      }
      this.s.errors += 1;
      this._resubscribe("append:" + (err && err.name));
    }
  }

  _teardown() {
    const ms = this.ms;
    this.ms = null;
    this.sb = null;
    this.queue = [];
    if (ms && ms.readyState === "open") {
      try { ms.endOfStream(); } catch (err) { /* closing anyway */ }
    }
  }

  // keeping near the live edge --------------------------------------------------------------
  _bufferedEnd() {
    const b = this.sb && this.ms && this.ms.readyState === "open" ? this._buffered() : null;
    return b && b.length ? b.end(b.length - 1) : null;
  }

  _buffered() {
    try { return this.sb.buffered; } catch (err) { return null; }
  }

  _tick() {
    if (!this.running) return;
    if (this.socket.connected && !this.subscribed && !this.subscribing && this.state !== "ended") this._subscribe();
    const b = this.sb ? this._buffered() : null;
    const v = this.video;
    if (b && b.length) {
      const last = b.length - 1;
      const start = b.start(last);
      const end = b.end(last);
      const t = v.currentTime;
      const inRange = Array.from({ length: b.length }, (_, i) => i).some((i) => t >= b.start(i) && t <= b.end(i) + 0.05);
      const behind = end - t;
      if (!inRange || t < start || behind > this.maxLatencyS) {
        // a late join, a jump on the hub, or too far behind: play from near the live edge.
        if (this.seeked && behind > this.maxLatencyS) this.s.jumps += 1;
        v.currentTime = Math.max(start, end - this.targetLatencyS);
        this.seeked = true;
        this.history = [];
      } else {
        this._pace(behind);
      }
      if (v.paused && end - v.currentTime > 0.2) this._play();
      this._trim(false);
      if (!v.paused && v.readyState >= 3) this._setState("playing");
    }
    if ((this.state === "playing" || this.state === "buffering") && performance.now() - this.lastDataAt > STALL_MS) {
      this._setState("stalled");
    }
    if (this.sb && !this.sb.updating && this.queue.length) this._append();
  }

  /** Catch up gently rather than jump: data comes in bursts (the recorder's timeslice),
   * so what matters is the smallest buffer of the last few seconds. While it stays above
   * the margin, play a little faster; at the margin, play at normal speed. */
  _pace(behind) {
    const now = performance.now();
    this.history.push([now, behind]);
    while (this.history.length && now - this.history[0][0] > PACE_WINDOW_MS) this.history.shift();
    if (now - this.history[0][0] < PACE_WINDOW_MS / 2) return;  // not enough seen yet
    const least = Math.min(...this.history.map((h) => h[1]));
    const margin = this.marginS;
    if (least > margin + 1.0) {  // far behind for seconds (a busy machine): skip ahead
      this.video.currentTime += least - margin;
      this.s.jumps += 1;
      this.history = [];
      return;
    }
    const rate = least > margin + 0.4 ? 1.25 : least > margin ? 1.08 : 1.0;
    if (this.video.playbackRate !== rate) this.video.playbackRate = rate;
  }

  _trim(urgent) {
    const sb = this.sb;
    const b = sb ? this._buffered() : null;
    if (!sb || sb.updating || !b || !b.length) return;
    const keep = urgent ? 2 : this.keepBufferS;
    const upto = this.video.currentTime - keep;
    if (upto - b.start(0) > (urgent ? 0.5 : 10)) {
      try { sb.remove(b.start(0), upto); } catch (err) { /* try again next tick */ }
    }
  }

  _play() {
    const p = this.video.play();
    if (p && typeof p.catch === "function") {
      p.catch((err) => {
        if (err && err.name === "NotAllowedError" && !this.video.muted) {
          this.video.muted = true;  // autoplay with sound is blocked: play muted rather than not at all
          this.video.play().catch(() => {});
        }
      });
    }
  }

  _ping() {
    if (!this.running || !this.socket.connected) return;
    const t0 = performance.now();
    this.socket.timeout(PING_MS).emit("media.ping", { t: Date.now() }, (err) => {
      if (!err) this.s.rtt_ms = Math.round(performance.now() - t0);
    });
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    if (typeof this.onState === "function") {
      try { this.onState(state, this.stats()); } catch (err) { /* the page's problem */ }
    }
  }
}

export default LivePlayer;
