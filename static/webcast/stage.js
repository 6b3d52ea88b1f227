/* The rapporteur's stage: pick the camera and microphone or share the screen, start and
 * end the lecture, flip the slides, see who watches and the questions from the sites.
 *
 * /live carries the lecture's state (stage.join after every (re)connection), the slide
 * flips, the questions and the watching sites; /media carries the stream, sent by the
 * media engineer's LivePublisher (recorder.js).
 */
const ACK_TIMEOUT_MS = 8000;
const SITES_POLL_MS = 5000;
const STATS_MS = 2000;

const root = document.getElementById("stage");
const T = JSON.parse(document.getElementById("stage-i18n").textContent);
const lectureId = Number(root.dataset.lectureId);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
const el = {
  conn: $("conn"), status: $("lecture-status"),
  preview: $("preview"), previewNote: $("preview-note"), onAir: $("on-air"),
  camera: $("camera"), mic: $("mic"), screen: $("btn-screen"), backToCamera: $("btn-camera"),
  start: $("btn-start"), resume: $("btn-resume"), stop: $("btn-stop"), pubStats: $("pub-stats"), sourceError: $("source-error"),
  slideImg: $("slide-img"), slideEmpty: $("slide-empty"), page: $("page"), nPages: $("n-pages"),
  prev: $("prev"), next: $("next"), flipForm: $("flip-form"), flipError: $("flip-error"),
  deckPick: $("deck-pick"), deck: $("deck"),
  upload: $("upload-form"), file: $("file"), uploadBtn: $("upload-btn"), uploadMsg: $("upload-msg"),
  watching: $("watching"), sites: $("sites"),
  questions: $("questions"), noQuestions: $("no-questions"), openCount: $("open-count"),
  doneBox: $("done-box"), done: $("done"), doneCount: $("done-count"),
};
const t = (key, values) => String(T[key]).replace(/\{(\w+)\}/g, (_, k) => (values && k in values ? values[k] : ""));
const numberFormat = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 1 });
const fmt = (n) => (typeof n === "number" ? numberFormat.format(n) : "–");
const timeFormat = new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });

const state = {
  token: root.dataset.token,
  lecture: { id: lectureId, status: root.dataset.status },
  slide: null,
  decks: [],
  questions: new Map(),
  stream: null,        // what the preview shows and the publisher sends
  cameraStream: null,
  screenStream: null,
  publisher: null,
  sitesAt: 0,
};

// sockets -------------------------------------------------------------------------------
function setConn(kind, text) {
  el.conn.className = "conn conn-" + kind;
  el.conn.textContent = text;
}
const options = {
  auth: (cb) => cb({ token: state.token }),
  reconnectionDelay: 1000,
  reconnectionDelayMax: 10000,
  timeout: 10000,
};
const live = io("/live", options);
const media = io("/media", options);

live.on("connect", () => { setConn("online", T.online); join(); });
live.on("disconnect", (reason) => {
  setConn("offline", T.offline);
  if (reason === "io server disconnect") setTimeout(() => live.connect(), 2000);
});
live.io.on("reconnect_attempt", (n) => setConn("offline", t("retrying", { n })));
live.on("connect_error", () => {
  if (live.active) { setConn("offline", T.offline); return; }
  refreshToken().then((ok) => {
    if (!ok) { setConn("expired", T.expired); return; }
    setTimeout(() => { live.connect(); if (!media.connected) media.connect(); }, 2000);
  });
});

function refreshToken() {
  return fetch(root.dataset.tokenUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : null))
    .then((data) => { if (data && data.ok) { state.token = data.token; return true; } return false; })
    .catch(() => false);
}

function call(event, payload) {
  return new Promise((resolve) => {
    live.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err, ack) => {
      resolve(err || !ack ? { ok: false, error: { code: "timeout", message: T.offline } } : ack);
    });
  });
}

async function join() {
  const ack = await call("stage.join", { lecture_id: lectureId });
  if (!ack.ok) { showError(el.sourceError, ack.error.message); return; }
  showLecture(ack.lecture);
  showSlide(ack.slide);
  showDecks(ack.decks);
  state.questions.clear();
  ack.questions.forEach((q) => state.questions.set(q.id, q));
  renderQuestions();
  showSites(ack.sites);
}

live.on("lecture.state", (lecture) => { if (lecture.id === lectureId) showLecture(lecture); });
live.on("slide.changed", (slide) => { if (slide.lecture_id === lectureId) showSlide(slide); });
live.on("question.new", (q) => { if (q.lecture_id === lectureId) { state.questions.set(q.id, q); renderQuestions(q.id); } });
live.on("question.changed", (q) => { if (q.lecture_id === lectureId) { state.questions.set(q.id, q); renderQuestions(); } });
live.on("lecture.sites", (data) => { if (data.lecture_id === lectureId) showSites(data); });

// the hub pushes the watching sites after every batch of kiosk reports; ask only when
// the pushes stop (no kiosk reporting through any hub process).
setInterval(async () => {
  if (!live.connected || Date.now() - state.sitesAt < SITES_POLL_MS) return;
  const ack = await call("stage.sites", { lecture_id: lectureId });
  if (ack.ok) showSites(ack);
}, SITES_POLL_MS);

function showError(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

// the lecture --------------------------------------------------------------------------------
function showLecture(lecture) {
  state.lecture = lecture;
  root.dataset.status = lecture.status;
  el.status.textContent = T.status[lecture.status] || lecture.status;
  el.status.className = "badge lecture-status status-" + lecture.status;
  updateButtons();
}

function updateButtons() {
  const status = state.lecture.status;
  const publishing = !!state.publisher;
  el.start.hidden = status !== "planned";
  el.resume.hidden = !(status === "live" && !publishing);
  el.stop.hidden = status !== "live";
  el.onAir.hidden = !publishing;
  root.classList.toggle("publishing", publishing);
  if (status === "ended") {
    el.screen.disabled = el.camera.disabled = el.mic.disabled = true;
  }
}

el.start.addEventListener("click", async () => {
  el.start.disabled = true;
  const ack = await call("lecture.start", { lecture_id: lectureId });
  el.start.disabled = false;
  if (!ack.ok) { showError(el.sourceError, ack.error.message); return; }
  showError(el.sourceError, "");
  showLecture(ack.lecture);
  await startPublisher();
});
el.resume.addEventListener("click", () => startPublisher());
el.stop.addEventListener("click", async () => {
  if (!window.confirm(T.confirm_stop)) return;
  stopPublisher();
  const ack = await call("lecture.stop", { lecture_id: lectureId });
  if (!ack.ok) { showError(el.sourceError, ack.error.message); return; }
  showLecture(ack.lecture);
});

// camera, microphone, screen ----------------------------------------------------------------------
async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  fill(el.camera, devices.filter((d) => d.kind === "videoinput"));
  fill(el.mic, devices.filter((d) => d.kind === "audioinput"));
}
function fill(select, devices) {
  const current = select.value;
  select.textContent = "";
  const def = new Option(T.default_device, "");
  select.add(def);
  devices.forEach((d, i) => select.add(new Option(d.label || t("device", { n: i + 1 }), d.deviceId)));
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

async function openCamera() {
  const constraints = {
    video: el.camera.value ? { deviceId: { exact: el.camera.value }, width: { ideal: 1280 }, height: { ideal: 720 } }
                           : { width: { ideal: 1280 }, height: { ideal: 720 } },
    audio: el.mic.value ? { deviceId: { exact: el.mic.value }, echoCancellation: true } : { echoCancellation: true },
  };
  try {
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    stopTracks(state.cameraStream);
    state.cameraStream = stream;
    showError(el.sourceError, "");
    el.previewNote.hidden = true;
    if (!state.screenStream) await useStream(stream);
    else await useStream(mixScreen());
  } catch (err) {
    showError(el.sourceError, t("no_camera", { error: err.message || err.name }));
    el.previewNote.textContent = t("no_camera", { error: err.name });
  }
}

function mixScreen() {
  const tracks = state.screenStream.getVideoTracks().slice();
  if (state.cameraStream) tracks.push(...state.cameraStream.getAudioTracks());
  return new MediaStream(tracks);
}

async function shareScreen() {
  try {
    const screen = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    stopTracks(state.screenStream);
    state.screenStream = screen;
    screen.getVideoTracks()[0].addEventListener("ended", backToCamera);
    el.screen.hidden = true;
    el.backToCamera.hidden = false;
    await useStream(mixScreen());
  } catch (err) {
    if (err && err.name !== "NotAllowedError") showError(el.sourceError, t("no_screen", { error: err.message || err.name }));
  }
}

async function backToCamera() {
  stopTracks(state.screenStream);
  state.screenStream = null;
  el.screen.hidden = false;
  el.backToCamera.hidden = true;
  if (state.cameraStream) await useStream(state.cameraStream);
}

function stopTracks(stream) {
  if (stream) stream.getTracks().forEach((track) => track.stop());
}

async function useStream(stream) {
  state.stream = stream;
  el.preview.srcObject = stream;
  el.preview.play().catch(() => {});
  // MediaRecorder cannot swap its tracks: a new source means a new publisher (and a
  // new initialization segment, which the hub hands to every site).
  if (state.publisher) {
    stopPublisher();
    await startPublisher();
  }
}

el.camera.addEventListener("change", openCamera);
el.mic.addEventListener("change", openCamera);
el.screen.addEventListener("click", shareScreen);
el.backToCamera.addEventListener("click", backToCamera);
if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) el.screen.hidden = true;

// the publisher ----------------------------------------------------------------------------------
let recorderModule = null;
async function startPublisher() {
  if (state.publisher || !state.stream) {
    if (!state.stream) showError(el.sourceError, t("no_camera", { error: "–" }));
    return;
  }
  recorderModule = recorderModule || import("./recorder.js").catch((err) => { console.warn(err); recorderModule = null; return null; });
  const mod = await recorderModule;
  if (!mod || !mod.LivePublisher) { showError(el.sourceError, T.publisher_missing); return; }
  try {
    state.publisher = new mod.LivePublisher(state.stream, { socket: media, lectureId });
    state.publisher.start();
    showError(el.sourceError, "");
  } catch (err) {
    console.warn("LivePublisher failed", err);
    state.publisher = null;
    showError(el.sourceError, T.publisher_missing);
  }
  updateButtons();
}

function stopPublisher() {
  if (!state.publisher) return;
  try { state.publisher.stop(); } catch (err) { console.warn("publisher.stop failed", err); }
  state.publisher = null;
  updateButtons();
}

function humanBytes(n) {
  if (typeof n !== "number") return "–";
  if (n > 1 << 20) return fmt(n / (1 << 20)) + " MB";
  return fmt(n / 1024) + " kB";
}
setInterval(() => {
  if (!state.publisher) { el.pubStats.textContent = T.not_publishing; return; }
  let s = {};
  try { s = state.publisher.stats() || {}; } catch (err) { s = {}; }
  const sent = s.sent_bytes ?? s.bytes ?? s.bytes_sent;
  const kbps = s.bitrate_kbps ?? s.kbps;
  el.pubStats.textContent = T.publishing + " · " + t("stats", { sent: humanBytes(sent), kbps: fmt(kbps) });
}, STATS_MS);
window.addEventListener("beforeunload", stopPublisher);

// slides --------------------------------------------------------------------------------------
function showSlide(slide) {
  state.slide = slide;
  const has = !!(slide && slide.url);
  el.slideImg.hidden = !has;
  el.slideEmpty.hidden = has;
  if (has) {
    el.slideImg.src = slide.url;
    el.slideImg.alt = slide.page + "/" + slide.n_pages;
  }
  el.page.value = has ? slide.page : "";
  el.page.max = has ? slide.n_pages : 1;
  el.nPages.textContent = has ? slide.n_pages : 0;
  el.prev.disabled = !has || slide.page <= 1;
  el.next.disabled = !has || slide.page >= slide.n_pages;
  if (has && el.deck.value !== String(slide.deck_id)) el.deck.value = String(slide.deck_id);
  root.dataset.slidePage = has ? String(slide.page) : "";
}

function showDecks(decks) {
  state.decks = decks || [];
  el.deck.textContent = "";
  state.decks.forEach((d) => el.deck.add(new Option(d.filename + " (" + d.n_pages + ")", d.id)));
  el.deckPick.hidden = state.decks.length < 2;
  if (state.slide && state.slide.deck_id) el.deck.value = String(state.slide.deck_id);
}

async function flip(page, deckId) {
  const payload = { lecture_id: lectureId, page };
  if (deckId) payload.deck_id = deckId;
  const ack = await call("slide.flip", payload);
  if (ack.ok) { showError(el.flipError, ""); showSlide(ack.slide); }
  else showError(el.flipError, ack.error.message);
}
el.prev.addEventListener("click", () => state.slide && flip(state.slide.page - 1));
el.next.addEventListener("click", () => state.slide && flip(state.slide.page + 1));
el.flipForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const page = parseInt(el.page.value, 10);
  if (Number.isFinite(page)) flip(page);
});
el.deck.addEventListener("change", () => flip(1, Number(el.deck.value)));
// presentation clickers send PageDown/PageUp (or the arrow keys)
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, textarea, select") || !state.slide || !state.slide.url) return;
  if (["PageDown", "ArrowRight"].includes(event.key)) { event.preventDefault(); if (!el.next.disabled) flip(state.slide.page + 1); }
  if (["PageUp", "ArrowLeft"].includes(event.key)) { event.preventDefault(); if (!el.prev.disabled) flip(state.slide.page - 1); }
});

el.upload.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!el.file.files.length) return;
  el.uploadBtn.disabled = true;
  el.uploadMsg.className = "upload-msg";
  el.uploadMsg.textContent = T.uploading;
  el.uploadMsg.hidden = false;
  try {
    const resp = await fetch(root.dataset.uploadUrl, {
      method: "POST", body: new FormData(el.upload), credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrf },
    });
    const data = await resp.json().catch(() => null);
    if (data && data.ok) {
      el.uploadMsg.textContent = data.message;
      el.uploadMsg.classList.add("ok");
      showDecks(data.decks);
      showSlide(data.slide);
      el.file.value = "";
    } else {
      el.uploadMsg.textContent = data && data.error ? data.error.message : T.upload_failed;
      el.uploadMsg.classList.add("error");
    }
  } catch (err) {
    el.uploadMsg.textContent = T.upload_failed;
    el.uploadMsg.classList.add("error");
  } finally {
    el.uploadBtn.disabled = false;
  }
});

// watching sites ----------------------------------------------------------------------------------
function healthClass(site) {
  const h = site.health || {};
  if (!h.state || h.state === "idle" || h.state === "waiting") return "h-unknown";
  if (h.state === "error" || h.state === "stalled") return "h-bad";
  if ((h.buffer_s ?? 1) < 0.5 || (h.rtt_ms ?? 0) > 800 || (h.dropped ?? 0) > 20) return "h-weak";
  return "h-good";
}

function healthText(h) {
  if (!h) return "";
  const parts = [];
  if (h.state && T.h_state[h.state]) parts.push(T.h_state[h.state]);
  [["buffer_s", "h_buffer"], ["bitrate_kbps", "h_kbps"], ["rtt_ms", "h_rtt"], ["dropped", "h_dropped"]].forEach(([key, label]) => {
    if (typeof h[key] === "number") parts.push(t(label, { v: fmt(h[key]) }));
  });
  return parts.join(" · ");
}

function showSites(data) {
  state.sitesAt = Date.now();
  el.watching.textContent = data.watching;
  el.sites.textContent = "";
  if (!data.sites.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = T.no_sites;
    el.sites.append(li);
    return;
  }
  data.sites.forEach((site) => {
    const li = document.createElement("li");
    li.className = healthClass(site);
    li.dataset.siteId = site.id;
    const name = document.createElement("span");
    name.className = "site-name";
    name.textContent = site.code + " · " + site.name;
    const detail = document.createElement("span");
    detail.className = "site-health";
    detail.textContent = (healthText(site.health) || T.no_health)
      + (site.audio_only || site.forced_audio_only ? " · " + T.audio_only : "");
    li.append(name, detail);
    el.sites.append(li);
  });
}

// questions --------------------------------------------------------------------------------------
function questionItem(q, fresh) {
  const li = document.createElement("li");
  li.className = "q q-" + q.status + " q-kind-" + q.kind + (fresh ? " fresh" : "");
  li.dataset.questionId = q.id;
  const head = document.createElement("div");
  head.className = "q-head";
  const kind = document.createElement("span");
  kind.className = "badge q-kind";
  kind.textContent = T.kinds[q.kind] || q.kind;
  const site = document.createElement("strong");
  site.textContent = q.site_code + " · " + q.site_name;
  const when = document.createElement("time");
  when.textContent = timeFormat.format(new Date(q.created_ms));
  head.append(kind, site, when);
  li.append(head);
  if (q.text) {
    const text = document.createElement("p");
    text.className = "q-text";
    text.textContent = q.text;
    li.append(text);
  }
  if (q.status === "open") {
    const actions = document.createElement("div");
    actions.className = "q-actions";
    [["answered", T.answered, "btn btn-small btn-primary"], ["dismissed", T.dismiss, "btn btn-small"]].forEach(([status, label, cls]) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = cls;
      b.textContent = label;
      b.dataset.mark = status;
      b.addEventListener("click", () => mark(q.id, status));
      actions.append(b);
    });
    li.append(actions);
  } else {
    const s = document.createElement("span");
    s.className = "badge q-status q-status-" + q.status;
    s.textContent = T.question_status[q.status] || q.status;
    head.append(s);
  }
  return li;
}

function renderQuestions(freshId) {
  const all = [...state.questions.values()].sort((a, b) => a.created_ms - b.created_ms || a.id - b.id);
  const open = all.filter((q) => q.status === "open");
  const done = all.filter((q) => q.status !== "open").reverse();
  el.questions.textContent = "";
  open.forEach((q) => el.questions.append(questionItem(q, q.id === freshId)));
  el.done.textContent = "";
  done.forEach((q) => el.done.append(questionItem(q)));
  el.noQuestions.hidden = all.length > 0;
  el.openCount.hidden = !open.length;
  el.openCount.textContent = open.length;
  el.doneBox.hidden = !done.length;
  el.doneCount.textContent = done.length;
}

async function mark(id, status) {
  const ack = await call("question.mark", { id, status });
  if (ack.ok) { state.questions.set(ack.question.id, ack.question); renderQuestions(); }
  else showError(el.sourceError, ack.error.message);
}

// start: ask for the camera once, then list the devices with their names
(async () => {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError(el.sourceError, t("no_camera", { error: "mediaDevices" }));
    return;
  }
  await openCamera();
  try { await listDevices(); } catch (err) { console.warn(err); }
  navigator.mediaDevices.addEventListener("devicechange", () => listDevices().catch(() => {}));
  updateButtons();
})();
updateButtons();

window.stage = { state, live, media, flip };
