/* The bridge point's room camera: a JPEG every N seconds, and at once when a proctor asks.
 *
 * startRoomCamera({uploadUrl, intervalSec, onState, ...}) opens the camera (video only),
 * says on screen that it is used and why, takes a snapshot every `intervalSec` while
 * `isActive()` (a lecture or a test in the room) and whenever the hub pushes
 * `snapshot.request` on the `/proctor` socket (kiosk auth), and uploads each one by HTTP
 * POST (multipart, the kiosk's session cookie, the page's CSRF token). A failed upload is
 * retried with backoff, newest frames first kept; a refused or lost camera is reported to
 * the hub, which raises a flag for the proctors. All texts come from the page (translated).
 *
 * The helpers below (openCamera, grabJpeg, Uploader, postReport) are shared with webcam.js.
 */

const RETRY_MIN_MS = 2000;
const RETRY_MAX_MS = 60000;
const MAX_QUEUED = 3;
const REOPEN_MS = [5000, 10000, 30000, 60000];
const REQUEST_MIN_GAP_MS = 3000;
const MAX_WIDTH = 1280;
const QUALITY = 0.8;

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export function fill(text, values = {}) {
  return String(text ?? "").replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const jitter = (ms) => Math.round(ms * (0.75 + Math.random() * 0.5));

/** The camera as a playing <video> (not in the page): {video, stream}; throws on refusal. */
export async function openCamera() {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: false,
    video: { width: { ideal: 1280 }, height: { ideal: 720 } },
  });
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  await video.play();
  for (let i = 0; i < 50 && !video.videoWidth; i += 1) await sleep(100);
  return { video, stream };
}

/** Whether a getUserMedia error means "refused / no camera" rather than a passing failure. */
export function isRefusal(err) {
  return ["NotAllowedError", "SecurityError", "NotFoundError", "OverconstrainedError"].includes(err && err.name);
}

/** The video's current frame as a JPEG Blob, at most 1280 px wide. */
export function grabJpeg(video) {
  const w = video.videoWidth;
  const h = video.videoHeight;
  if (!w || !h) return Promise.resolve(null);
  const scale = Math.min(1, MAX_WIDTH / w);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(h * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob((blob) => resolve(blob), "image/jpeg", QUALITY));
}

/** A small page report (camera refused or lost, page hidden): JSON, survives page unload. */
export async function postReport(url, body, tries = 3) {
  for (let i = 0; i < tries; i += 1) {
    try {
      const resp = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        keepalive: true,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
        body: JSON.stringify(body),
      });
      if (resp.ok || (resp.status >= 400 && resp.status < 500 && resp.status !== 429)) return resp.ok;
    } catch (err) { /* offline: try again */ }
    await sleep(jitter(RETRY_MIN_MS * 2 ** i));
  }
  return false;
}

/**
 * Uploads snapshots one at a time; keeps the newest MAX_QUEUED while the hub is out of
 * reach and retries with backoff. `onResult(item, ack)` gets the hub's answer: ok, or a
 * refusal (4xx: not retried, the same bytes would be refused again).
 */
export class Uploader {
  constructor({ url, fields = {}, onResult = () => {}, onRetry = () => {} }) {
    Object.assign(this, { url, fields, onResult, onRetry });
    this.queue = [];
    this.busy = false;
    this.delay = RETRY_MIN_MS;
    this.stopped = false;
  }

  push(blob, kind, extra = {}) {
    if (!blob || this.stopped) return;
    this.queue.push({ blob, kind, extra, at: Date.now() });
    while (this.queue.length > MAX_QUEUED) this.queue.shift();
    this.pump();
  }

  async pump() {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length && !this.stopped) {
        const item = this.queue[0];
        const result = await this.send(item);
        if (result === "retry") {
          this.onRetry(item);
          await sleep(jitter(this.delay));
          this.delay = Math.min(this.delay * 2, RETRY_MAX_MS);
          continue;
        }
        this.delay = RETRY_MIN_MS;
        if (this.queue[0] === item) this.queue.shift();
        this.onResult(item, result);
      }
    } finally {
      this.busy = false;
    }
  }

  async send(item) {
    const form = new FormData();
    form.append("kind", item.kind);
    for (const [k, v] of Object.entries({ ...this.fields, ...item.extra })) form.append(k, String(v));
    form.append("image", item.blob, "snapshot.jpg");
    let resp;
    try {
      resp = await fetch(this.url, {
        method: "POST",
        body: form,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      });
    } catch (err) {
      return "retry";
    }
    if (resp.status >= 500 || resp.status === 429 || resp.status === 408) return "retry";
    let ack = null;
    try { ack = await resp.json(); } catch (err) { ack = null; }
    if (!ack || typeof ack !== "object") {
      return resp.ok ? "retry" : { ok: false, status: resp.status, error: { code: "http_" + resp.status, message: "" } };
    }
    return { ...ack, status: resp.status };
  }

  stop() {
    this.stopped = true;
    this.queue = [];
  }
}

/**
 * Start the room camera. Options:
 *   uploadUrl, reportUrl, intervalSec, onState(state, detail), texts (from the page),
 *   notice (element for the privacy notice and the camera's state),
 *   kioskToken / tokenUrl (the /proctor socket's kiosk auth and where to renew it),
 *   isActive() (take the periodic snapshots only while it says so; requests always).
 * Returns a controller: {capture(kind), stop(), stats}.
 */
export function startRoomCamera({
  uploadUrl, reportUrl, intervalSec = 30, onState = () => {}, texts = {}, notice = null,
  kioskToken = null, tokenUrl = null, isActive = () => true,
}) {
  const stats = { captured: 0, sent: 0, refused: 0, requests: 0, lastSentAt: null, lastError: null, state: "starting" };
  const status = notice ? notice.querySelector("[data-camera-status]") : null;
  if (notice) {
    const text = notice.querySelector("[data-camera-notice]");
    if (text) text.textContent = texts.notice || "";
    notice.hidden = false;
  }
  let cam = null;
  let stopped = false;
  let reopenTry = 0;
  let lastRequest = 0;
  let timer = null;

  function setState(state, detail = {}, text = null) {
    stats.state = state;
    if (status) {
      status.textContent = text ?? texts[state] ?? "";
      status.dataset.state = state;
    }
    if (notice) notice.dataset.state = state;
    try { onState(state, detail); } catch (err) { /* the page's callback must not stop the camera */ }
  }

  const uploader = new Uploader({
    url: uploadUrl,
    onRetry: () => setState("retrying"),
    onResult: (item, ack) => {
      if (ack.ok) {
        stats.sent += 1;
        stats.lastSentAt = Date.now();
        const time = new Date().toLocaleTimeString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour12: false });
        setState("sent", { id: ack.id, kind: item.kind }, fill(texts.sent, { time }));
      } else {
        stats.refused += 1;
        stats.lastError = ack.error || null;
        if (ack.status === 401) setState("signed_out", ack);
        else setState("on", ack);
      }
    },
  });

  async function open() {
    if (stopped) return;
    setState("starting");
    try {
      cam = await openCamera();
    } catch (err) {
      const refused = isRefusal(err);
      setState(refused ? "refused" : "lost", { error: err && err.name });
      if (reportUrl) postReport(reportUrl, { camera: "room", event: refused ? "camera_refused" : "camera_lost", detail: { error: String(err && err.name) } });
      scheduleReopen();
      return;
    }
    reopenTry = 0;
    setState(isActive() ? "on" : "idle");
    cam.stream.getVideoTracks().forEach((track) => {
      track.addEventListener("ended", () => {
        if (stopped) return;
        cam = null;
        setState("lost");
        if (reportUrl) postReport(reportUrl, { camera: "room", event: "camera_lost", detail: { how: "ended" } });
        scheduleReopen();
      });
    });
    if (isActive()) capture("room");
  }

  function scheduleReopen() {
    const wait = REOPEN_MS[Math.min(reopenTry, REOPEN_MS.length - 1)];
    reopenTry += 1;
    setTimeout(() => { if (!stopped && !cam) open(); }, wait);
  }

  async function capture(kind = "room") {
    if (!cam || stopped) return false;
    if (kind === "requested") {  // a proctor clicking twice gets one picture
      if (Date.now() - lastRequest < REQUEST_MIN_GAP_MS) return false;
      lastRequest = Date.now();
    }
    const blob = await grabJpeg(cam.video);
    if (!blob) return false;
    stats.captured += 1;
    uploader.push(blob, kind);
    return true;
  }

  timer = setInterval(() => {
    if (!cam) return;
    if (isActive()) capture("room");
    else if (stats.state === "on" || stats.state === "sent") setState("idle");
  }, Math.max(1, intervalSec) * 1000);

  // "take one now": the proctor's request reaches the kiosk over /proctor.
  let socket = null;
  let token = kioskToken;
  if (typeof io === "function" && token) {
    socket = io("/proctor", {
      auth: (cb) => cb({ kiosk: token }),
      reconnection: true,
      reconnectionAttempts: Infinity,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 10000,
    });
    socket.on("snapshot.request", () => {
      stats.requests += 1;
      setState("requested");
      capture("requested");
    });
    socket.on("connect_error", async () => {
      if (socket.active || !tokenUrl) return;  // network trouble: the client retries itself
      try {  // refused: the kiosk token expired; renew it from the session
        const resp = await fetch(tokenUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
        const data = resp.ok ? await resp.json() : null;
        if (data && data.ok) token = data.token;
      } catch (err) { /* offline */ }
      setTimeout(() => { if (!stopped && !socket.connected) socket.connect(); }, jitter(5000));
    });
    socket.on("disconnect", (reason) => {
      if (reason === "io server disconnect" && !stopped) setTimeout(() => socket.connect(), 2000);
    });
  }

  open();

  return {
    stats,
    capture,
    get socket() { return socket; },
    stop() {
      stopped = true;
      clearInterval(timer);
      uploader.stop();
      if (socket) socket.close();
      if (cam) cam.stream.getTracks().forEach((t) => t.stop());
      cam = null;
      setState("stopped");
    },
  };
}
