/* The bridge point's kiosk: the room's PC on the projector.
 *
 * Two sockets on one connection: /live (what to show: lecture, slide, announcements,
 * exam QR code; health reports; questions) and /media (the video, played by the media
 * engineer's LivePlayer). Both reconnect by themselves forever, with backoff up to 10 s;
 * after every (re)connection the page asks the hub for the whole state ("kiosk.sync"),
 * so nothing missed while the link was down stays missed. The page says on screen
 * which state it is in.
 */
const HEALTH_EVERY_MS = 5000;
const ACK_TIMEOUT_MS = 8000;
const BANNER_MS = 30000;
const TOAST_MS = 5000;
const TOOLS_IDLE_MS = 8000;
const MAX_ANNOUNCEMENTS = 5;
const REFUSED_RETRY_MS = [2000, 5000, 10000];

const root = document.getElementById("kiosk");
const T = JSON.parse(document.getElementById("kiosk-i18n").textContent);
const $ = (id) => document.getElementById(id);
const el = {
  conn: $("conn"), mode: $("mode"), clock: $("clock"), idleClock: $("idle-clock"),
  slideImg: $("slide-img"), slideEmpty: $("slide-empty"), slidePage: $("slide-page"),
  video: $("video"), videoNote: $("video-note"),
  lectureLabel: $("lecture-label"), lectureTitle: $("lecture-title"), lectureRapporteur: $("lecture-rapporteur"),
  announcements: $("announcements"), noAnnouncements: $("no-announcements"), banner: $("banner"), toast: $("toast"),
  exam: $("exam"), examTitle: $("exam-title"), examQr: $("exam-qr"), examLink: $("exam-link"), examDeadline: $("exam-deadline"),
  hand: $("btn-hand"), ask: $("btn-ask"), audio: $("btn-audio"), full: $("btn-full"), start: $("start"),
  dialog: $("ask"), askForm: $("ask-form"), askText: $("ask-text"), askError: $("ask-error"), askCancel: $("ask-cancel"),
};

const state = {
  token: root.dataset.token,
  lecture: null,
  slideAt: 0,            // server time of the newest slide shown: older pushes are ignored
  mode: { audio_only: false, own_audio_only: false, forced_audio_only: false, track: "av" },
  announcements: [],
  exam: null,
  player: null,
  playerLectureId: null,
  rtt: null,
  refusals: 0,
};

const t = (key, values) => String(T[key]).replace(/\{(\w+)\}/g, (_, k) => (values && k in values ? values[k] : ""));

// clock in Vietnam time ----------------------------------------------------------------
const clockFormat = new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const vnParts = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
function timeOf(ms) {  // "08:30 15/07"
  const p = {};
  vnParts.formatToParts(new Date(ms)).forEach((part) => { p[part.type] = part.value; });
  return p.hour + ":" + p.minute + " " + p.day + "/" + p.month;
}
function tickClock() {
  const now = clockFormat.format(new Date());
  el.clock.textContent = now;
  el.idleClock.textContent = now;
}
setInterval(tickClock, 1000);
tickClock();

// connection -------------------------------------------------------------------------
function setConn(kind, text) {
  el.conn.className = "kconn kconn-" + kind;
  el.conn.textContent = text;
  root.classList.toggle("is-offline", kind === "offline");
}

if (typeof io !== "function") throw new Error("socket.io client missing: run deploy/vendor.sh");

const options = {
  auth: (cb) => cb({ kiosk: state.token }),   // read at every (re)connection
  reconnection: true,
  reconnectionAttempts: Infinity,
  reconnectionDelay: 1000,
  reconnectionDelayMax: 10000,
  randomizationFactor: 0.5,
  timeout: 10000,
};
const live = io("/live", options);
const media = io("/media", options);

live.on("connect", () => {
  state.refusals = 0;
  setConn("online", T.online);
  sync();
});
live.on("disconnect", (reason) => {
  setConn("offline", T.offline);
  // closed by the hub on purpose (a restart): the client would not come back by itself.
  if (reason === "io server disconnect") setTimeout(() => live.connect(), 2000);
});
live.io.on("reconnect_attempt", (n) => setConn("offline", t("retrying", { n })));
live.on("connect_error", () => {
  if (live.active) {
    setConn("offline", T.offline);  // a network error: the manager retries by itself
    return;
  }
  refused(live);  // refused by the hub: most likely an expired kiosk token
});
media.on("connect_error", () => { if (!media.active) refused(media); });
media.on("disconnect", (reason) => { if (reason === "io server disconnect") setTimeout(() => media.connect(), 2000); });

function refused(socket) {
  const wait = REFUSED_RETRY_MS[Math.min(state.refusals, REFUSED_RETRY_MS.length - 1)];
  state.refusals += 1;
  setConn("offline", T.offline);
  fetch(root.dataset.tokenUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((resp) => {
      if (resp.status === 401) {
        setConn("offline", T.signed_out);
        setTimeout(() => { location.href = root.dataset.loginUrl; }, 3000);
        return null;
      }
      return resp.ok ? resp.json() : null;
    })
    .then((data) => {
      if (data && data.ok) state.token = data.token;
    })
    .catch(() => {})
    .finally(() => setTimeout(() => { if (!socket.connected) socket.connect(); }, wait));
}

function call(event, payload) {
  return new Promise((resolve) => {
    if (!live.connected) {
      resolve({ ok: false, error: { code: "offline", message: T.not_sent } });
      return;
    }
    live.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err, ack) => {
      resolve(err || !ack ? { ok: false, error: { code: "timeout", message: T.not_sent } } : ack);
    });
  });
}

let syncing = false;
let syncAgain = false;
async function sync() {
  if (syncing) { syncAgain = true; return; }
  syncing = true;
  syncAgain = false;
  const ack = await call("kiosk.sync", {});
  syncing = false;
  if (ack.ok) applyState(ack);
  else if (live.connected) setTimeout(sync, 3000);
  if (syncAgain) sync();
}

// what the hub pushes ---------------------------------------------------------------------
live.on("lecture.state", () => sync());
live.on("slide.changed", (slide) => {
  if (state.lecture && slide.lecture_id === state.lecture.id) showSlide(slide);
});
live.on("site.mode", (mode) => applyMode(mode));
live.on("announcement", (item) => addAnnouncement(item, true));
live.on("exam.opened", (exam) => showExam(exam));
live.on("exam.closed", (data) => { if (state.exam && data.exam_id === state.exam.exam_id) showExam(null); });
live.on("question.changed", (q) => {
  if (q.status === "answered") toast(T.question_answered);
  else if (q.status === "dismissed") toast(T.question_dismissed);
});

// showing it ----------------------------------------------------------------------------------
function applyState(s) {
  state.slideAt = s.server_ms || 0;
  showLecture(s.lecture);
  showSlide(s.slide, true);
  applyMode(s.mode);
  state.announcements = [];
  el.announcements.textContent = "";
  (s.announcements || []).slice().reverse().forEach((item) => addAnnouncement(item, false));
  showExam(s.exam);
}

function showLecture(lecture) {
  state.lecture = lecture && lecture.status === "live" ? lecture : null;
  root.classList.toggle("is-idle", !state.lecture);
  root.classList.toggle("is-live", !!state.lecture);
  if (state.lecture) {
    el.lectureLabel.textContent = T.live;
    el.lectureTitle.textContent = lecture.title;
    el.lectureRapporteur.textContent = t("rapporteur", { name: lecture.rapporteur });
  } else {
    el.lectureLabel.textContent = lecture && lecture.status === "ended" ? T.ended : T.live;
    el.lectureTitle.textContent = T.no_lecture;
    el.lectureRapporteur.textContent = "";
  }
  el.hand.disabled = el.ask.disabled = !state.lecture;
  ensurePlayer();
}

function showSlide(slide, fromSync) {
  if (!fromSync && slide && slide.at_ms && slide.at_ms < state.slideAt) return;  // a late, older flip
  if (slide && slide.at_ms) state.slideAt = slide.at_ms;
  if (!slide || !slide.url) {
    el.slideImg.hidden = true;
    el.slideImg.removeAttribute("src");
    el.slideEmpty.hidden = false;
    el.slidePage.hidden = true;
    root.classList.remove("has-slide");
    root.dataset.slidePage = "";
    return;
  }
  const page = t("page", { page: slide.page, n: slide.n_pages });
  // load first, then swap: the room never sees a half-drawn or blank slide.
  const next = new Image();
  next.onload = () => {
    el.slideImg.src = slide.url;
    el.slideImg.alt = page;
    el.slideImg.hidden = false;
    el.slideEmpty.hidden = true;
    el.slidePage.hidden = false;
    el.slidePage.textContent = page;
    root.classList.add("has-slide");
    root.dataset.slidePage = String(slide.page);
    root.dataset.slideUrl = slide.url;
  };
  next.src = slide.url;
}

function applyMode(mode) {
  if (!mode) return;
  const trackChanged = mode.track !== state.mode.track;
  state.mode = mode;
  root.classList.toggle("audio-only", !!mode.audio_only);
  el.audio.setAttribute("aria-pressed", String(!!mode.own_audio_only));
  el.audio.textContent = mode.own_audio_only ? T.audio_off : T.audio_on;
  el.audio.disabled = !!mode.forced_audio_only;
  el.mode.hidden = !mode.audio_only;
  el.mode.textContent = mode.forced_audio_only ? T.mode_forced : T.mode_own;
  if (mode.audio_only) el.videoNote.textContent = T.audio_only;
  if (trackChanged && state.player && typeof state.player.setTrack === "function") {
    try { state.player.setTrack(mode.track); } catch (err) { console.warn("setTrack failed", err); }
  }
}

function addAnnouncement(item, fresh) {
  if (state.announcements.some((a) => a.id === item.id)) return;
  state.announcements.unshift(item);
  const li = document.createElement("li");
  li.dataset.id = item.id;
  const when = document.createElement("time");
  when.textContent = timeOf(item.created_ms);
  const text = document.createElement("p");
  text.textContent = item.text;
  li.append(when, text);
  el.announcements.prepend(li);
  while (el.announcements.children.length > MAX_ANNOUNCEMENTS) el.announcements.lastElementChild.remove();
  state.announcements = state.announcements.slice(0, MAX_ANNOUNCEMENTS);
  el.noAnnouncements.hidden = state.announcements.length > 0;
  if (fresh) banner(item.text);
}

let bannerTimer = null;
function banner(text) {
  el.banner.textContent = "";
  const label = document.createElement("strong");
  label.textContent = T.new_announcement;
  const body = document.createElement("span");
  body.textContent = text;
  el.banner.append(label, body);
  el.banner.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => { el.banner.hidden = true; }, BANNER_MS);
}

let toastTimer = null;
function toast(text, isError) {
  el.toast.textContent = text;
  el.toast.classList.toggle("error", !!isError);
  el.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.toast.hidden = true; }, TOAST_MS);
}

function showExam(exam) {
  state.exam = exam || null;
  el.exam.hidden = !exam;
  root.classList.toggle("has-exam", !!exam);
  if (!exam) return;
  el.examTitle.textContent = exam.title;
  if (el.examQr.getAttribute("src") !== exam.qr_url) el.examQr.src = exam.qr_url;
  el.examLink.textContent = location.origin + exam.path;
  el.examDeadline.textContent = exam.deadline_ms ? t("exam_deadline", { time: timeOf(exam.deadline_ms) }) : "";
}

// the video ---------------------------------------------------------------------------------
let playerModule = null;
function loadPlayer() {
  if (!playerModule) {
    playerModule = import("./player.js").catch((err) => {
      console.warn("player.js unavailable", err);
      playerModule = null;  // try again at the next lecture
      return null;
    });
  }
  return playerModule;
}

async function ensurePlayer() {
  const want = state.lecture ? state.lecture.id : null;
  if (state.playerLectureId === want && (state.player || !want)) return;
  if (state.player) {
    try { state.player.stop(); } catch (err) { console.warn("player.stop failed", err); }
    state.player = null;
  }
  state.playerLectureId = want;
  root.classList.remove("video-playing");
  el.videoNote.textContent = want ? T.video_loading : T.no_video;
  if (!want) return;
  const mod = await loadPlayer();
  if (state.playerLectureId !== want || state.player) return;  // changed while loading
  if (!mod || !mod.LivePlayer) {
    el.videoNote.textContent = T.video_unavailable;
    state.playerLectureId = null;
    return;
  }
  try {
    state.player = new mod.LivePlayer(el.video, { socket: media, lectureId: want, track: state.mode.track });
    state.player.start();
  } catch (err) {
    console.warn("LivePlayer failed", err);
    state.player = null;
    el.videoNote.textContent = T.video_unavailable;
  }
}
el.video.muted = true;  // browsers allow muted autoplay; the start click turns the sound on
el.video.addEventListener("playing", () => root.classList.add("video-playing"));
el.video.addEventListener("emptied", () => root.classList.remove("video-playing"));

// health, every few seconds --------------------------------------------------------------------
function number(value) {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined;
}
function reportHealth() {
  if (!live.connected) return;
  let s = {};
  try { s = state.player ? state.player.stats() || {} : {}; } catch (err) { s = { state: "error" }; }
  const payload = {
    state: String(s.state || (state.lecture ? "waiting" : "idle")).slice(0, 20),
    buffer_s: number(s.buffer_s),
    bitrate_kbps: number(s.bitrate_kbps),
    dropped: number(s.dropped),
    received: number(s.received),
    rtt_ms: number(s.rtt_ms) ?? state.rtt ?? undefined,
    track: state.mode.track,
  };
  const t0 = performance.now();
  live.timeout(ACK_TIMEOUT_MS).emit("site.health", payload, (err) => {
    if (!err) state.rtt = Math.round(performance.now() - t0);
  });
}
setInterval(reportHealth, HEALTH_EVERY_MS);

// the room's buttons ------------------------------------------------------------------------------
el.start.addEventListener("click", () => {
  enterFullscreen();
  el.video.muted = false;
  el.video.play().catch(() => {});
  el.start.hidden = true;
  root.classList.add("started");
});
el.full.addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else enterFullscreen();
});
function enterFullscreen() {
  const target = document.documentElement;
  if (target.requestFullscreen) target.requestFullscreen({ navigationUI: "hide" }).catch(() => {});
}

el.audio.addEventListener("click", async () => {
  const ack = await call("site.audio_only", { on: !state.mode.own_audio_only });
  if (ack.ok) applyMode(ack);
  else toast(ack.error.message, true);
});

el.hand.addEventListener("click", async () => {
  if (!state.lecture) { toast(T.need_lecture, true); return; }
  const ack = await call("site.question", { lecture_id: state.lecture.id, kind: "hand" });
  if (ack.ok) toast(ack.created ? T.hand_sent : T.hand_again);
  else toast(ack.error.message, true);
});

el.ask.addEventListener("click", () => {
  if (!state.lecture) { toast(T.need_lecture, true); return; }
  el.askError.hidden = true;
  el.dialog.showModal();
  el.askText.focus();
});
el.askCancel.addEventListener("click", () => el.dialog.close());
el.askForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = el.askText.value.trim();
  if (!text || !state.lecture) return;
  const ack = await call("site.question", { lecture_id: state.lecture.id, kind: "question", text });
  if (ack.ok) {
    el.askText.value = "";
    el.dialog.close();
    toast(T.question_sent);
  } else {
    el.askError.textContent = ack.error.message;
    el.askError.hidden = false;
  }
});

// the buttons fade when nobody touches the mouse: the projector shows the lecture.
let toolsTimer = null;
function wake() {
  root.classList.add("tools-awake");
  clearTimeout(toolsTimer);
  toolsTimer = setTimeout(() => root.classList.remove("tools-awake"), TOOLS_IDLE_MS);
}
["mousemove", "keydown", "touchstart"].forEach((type) => document.addEventListener(type, wake, { passive: true }));
wake();

// for tests and the curious operator: what the page is showing
window.kiosk = { state, live, media, sync };
