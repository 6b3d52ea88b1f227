// The learner's exam page: one socket to `/exam`, answers kept in a local queue until the
// hub acknowledges them, a countdown on the server's clock.
//
// Why it is built this way:
// - Bridge points sit on weak links. Every change goes to localStorage first and is sent
//   until an ok ack says it is on disk; a reload, a reconnect or another device merges
//   what the hub has with what is still queued here (the higher `seq` wins).
// - The whole province starts at once. The paper arrives sealed (AES-GCM) before the
//   start; the start is a tiny broadcast with the keys. Web Crypto needs a secure context
//   and bridge points may reach the hub over plain HTTP on a LAN, hence @noble/ciphers.
// - The client's clock is not trusted: the countdown runs on an offset measured with
//   `time.sync` (the sample with the smallest round trip wins).
// All UI text comes from the template (#i18n), already translated.

const $ = (sel, root = document) => root.querySelector(sel);
const byTestId = (id) => $(`[data-testid="${id}"]`);
const field = (name) => $(`[data-field="${name}"]`);

const cfg = JSON.parse($('#exam-config').textContent);
const T = JSON.parse($('#i18n').textContent);

/** A translated string with {placeholders} filled in. */
function t(key, vars = {}) {
  return String(T[key] ?? key).replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

const RETRYABLE = new Set(['server.busy', 'server.retry', 'server.error', 'client.timeout', 'client.offline', 'client.empty']);
const OPEN_STATUSES = new Set(['pending', 'in_progress']);
const WARN_MS = 5 * 60 * 1000;
const LETTERS = 'ABCDEFGHIJ';

// storage ---------------------------------------------------------------------------

const store = (() => {
  const mem = new Map();
  let ls = null;
  try {
    ls = window.localStorage;
    ls.setItem('diemcau.probe', '1');
    ls.removeItem('diemcau.probe');
  } catch {
    ls = null; // private mode or disabled: keep the queue in memory for this page's life
  }
  return {
    get(key) {
      try { return ls ? ls.getItem(key) : mem.get(key) ?? null; } catch { return mem.get(key) ?? null; }
    },
    set(key, value) {
      mem.set(key, value);
      if (!ls) return true;
      try { ls.setItem(key, value); return true; } catch { return false; }
    },
    remove(key) {
      mem.delete(key);
      try { ls && ls.removeItem(key); } catch { /* nothing to do */ }
    },
  };
})();

const KEYS = {
  queue: `diemcau.exam.${cfg.attempt_id}.queue`,
  seq: `diemcau.exam.${cfg.attempt_id}.seq`,
  index: `diemcau.exam.${cfg.attempt_id}.index`,
};

function readJSON(key, fallback) {
  try {
    const v = JSON.parse(store.get(key));
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

// state -----------------------------------------------------------------------------

const S = {
  phase: 'loading', // loading | waiting | answering | result | error
  joined: false,
  attemptId: cfg.attempt_id,
  exam: null,
  code: null,
  sealed: null,
  paper: null,
  byId: new Map(),
  index: Math.max(0, Number(store.get(KEYS.index)) || 0),
  /** question id → {choice, flagged, seq} as the hub has acknowledged it. */
  server: {},
  /** question id → {choice, flagged, seq}: the latest change not yet acknowledged. */
  queue: sanitizeQueue(readJSON(KEYS.queue, {})),
  /** question id → {seq, id} of the send in flight (id tells a stale ack from a newer send). */
  inflight: {},
  lastSeq: Math.max(0, Number(store.get(KEYS.seq)) || 0),
  attemptStatus: null,
  deadlineMs: null,
  paused: false,
  pausedRemaining: null,
  offset: 0,
  bestRtt: Infinity,
  retrying: false,
  backoff: 0,
  retryTimer: null,
  netDown: false,
  submitting: false,
  timeUp: false,
  lastWall: Date.now(),
  lastPerf: performance.now(),
};

function sanitizeQueue(q) {
  const out = {};
  if (q && typeof q === 'object') {
    for (const [k, v] of Object.entries(q)) {
      if (v && Number.isInteger(v.seq) && (v.choice === null || Number.isInteger(v.choice))) {
        out[k] = { choice: v.choice, flagged: !!v.flagged, seq: v.seq };
      }
    }
  }
  return out;
}

function persistQueue() {
  const ok = Object.keys(S.queue).length
    ? store.set(KEYS.queue, JSON.stringify(S.queue))
    : (store.remove(KEYS.queue), true);
  if (!ok) showMessage(t('storage_full'));
}

function nextSeq() {
  // Server-clock milliseconds keep two devices of one learner in order; max(+1) keeps
  // it strictly increasing even if the clock steps back.
  const seq = Math.max(S.lastSeq + 1, Math.floor(serverNow()));
  S.lastSeq = seq;
  store.set(KEYS.seq, String(seq));
  return seq;
}

const serverNow = () => Date.now() + S.offset;

/** What the page shows for a question: the queued change, else what the hub has. */
function view(qid) {
  return S.queue[qid] || S.server[qid] || { choice: null, flagged: false, seq: 0 };
}

const attemptOpen = () => OPEN_STATUSES.has(S.attemptStatus);
const canAnswer = () =>
  S.phase === 'answering' && attemptOpen() && !S.paused && !S.timeUp && !S.submitting;

// socket ----------------------------------------------------------------------------

if (typeof window.io !== 'function') {
  showError(t('no_script'));
  throw new Error('socket.io client missing: run deploy/vendor.sh');
}

const socket = window.io(cfg.namespace, {
  auth: { token: cfg.token },
  transports: ['websocket', 'polling'],
  tryAllTransports: true,
  reconnection: true,
  reconnectionAttempts: Infinity,
  reconnectionDelay: 500,
  reconnectionDelayMax: 10000,
  randomizationFactor: 0.5,
  timeout: 20000,
});

/** Emit with an ack; always resolves to an ack-shaped object. */
function call(event, data, ms = 15000) {
  return new Promise((resolve) => {
    if (!socket.connected) {
      resolve({ ok: false, error: { code: 'client.offline', message: t('offline') } });
      return;
    }
    socket.timeout(ms).emit(event, data, (err, res) => {
      if (err) resolve({ ok: false, error: { code: 'client.timeout', message: '' } });
      else resolve(res && typeof res === 'object' ? res : { ok: false, error: { code: 'client.empty', message: '' } });
    });
  });
}

socket.on('connect', async () => {
  clearTimeout(S.probeTimer);
  S.netDown = false;
  renderConnection();
  await timeSync();
  await join();
});

socket.on('disconnect', (reason) => {
  S.joined = false;
  S.inflight = {}; // their acks are lost: the queue sends them again after the re-join
  renderConnection();
  renderSaveState();
  if (reason === 'io server disconnect') {
    // the hub dropped us on purpose (restart, kick): come back after a pause.
    setTimeout(() => socket.connect(), 2000 + Math.random() * 3000);
  }
});

socket.on('connect_error', (err) => {
  renderConnection();
  const refusal = err && err.data && err.data.code ? err.data : null;
  if (!refusal) return; // a network error: socket.io retries by itself
  // The hub refused us (middleware): socket.io does not retry those on its own.
  showMessage(refusal.message || t('offline'));
  if (!String(refusal.code).startsWith('auth.')) {
    setTimeout(() => socket.connect(), 5000 + Math.random() * 5000);
  }
});

socket.on('exam.start', onExamStart);
socket.on('attempt.time', (data) => {
  if (!data || data.attempt_id !== S.attemptId) return;
  applyTime(data);
  if (!attemptOpen()) requestSync();
  else if (!S.paused) flushQueue();
  render();
});
socket.on('attempt.closed', (data) => {
  if (!data || data.attempt_id !== S.attemptId) return;
  showResult(data);
});
socket.on('exam.closed', (data) => {
  if (data && data.exam_id === cfg.exam_id && S.phase !== 'result') requestSync();
});

// The browser knows at once when the network is gone; socket.io would take a ping
// timeout to notice, and an open socket may even survive a dead link for a while.
window.addEventListener('offline', () => {
  S.netDown = true;
  socket.disconnect();
  renderConnection();
  renderSaveState();
  probeLater();
});
window.addEventListener('online', () => {
  S.netDown = false;
  reconnectNow();
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && !socket.connected && !S.netDown) reconnectNow();
});

function reconnectNow() {
  if (socket.connected) return;
  clearTimeout(S.probeTimer);
  socket.disconnect(); // resets the backoff: try now, not in ten seconds
  socket.connect();
}

function probeLater() {
  // navigator.onLine can stay false on some networks that work: try anyway now and then.
  clearTimeout(S.probeTimer);
  S.probeTimer = setTimeout(() => {
    if (!socket.connected) socket.connect();
  }, 20000 + Math.random() * 10000);
}

async function timeSync() {
  for (let i = 0; i < 3 && socket.connected; i++) {
    const t0 = Date.now();
    const res = await call('time.sync', { t0 }, 5000);
    const t1 = Date.now();
    if (!res.ok || typeof res.server_ms !== 'number') return;
    const rtt = t1 - t0;
    if (rtt <= S.bestRtt) {
      S.bestRtt = rtt;
      S.offset = res.server_ms - (t0 + t1) / 2;
    }
  }
}

async function join() {
  const res = await call('attempt.join', { exam_id: cfg.exam_id }, 20000);
  if (!res.ok) {
    const code = res.error && res.error.code;
    if (RETRYABLE.has(code)) {
      if (socket.connected) setTimeout(() => socket.connected && !S.joined && join(), 2000 + Math.random() * 3000);
      return;
    }
    if (S.phase === 'loading') showError(res.error.message || t('not_registered'));
    else showMessage(res.error.message || t('not_registered'));
    return;
  }
  S.joined = true;
  applyState(res);
  flushQueue();
}

async function requestSync() {
  if (!socket.connected) return;
  if (!S.joined) return join();
  const res = await call('attempt.sync', { attempt_id: S.attemptId }, 20000);
  if (res.ok) applyState(res);
  else if (res.error && res.error.code === 'attempt.not_joined') join();
}

/** A join or sync answer: the exam, the code, the attempt's clock, the paper. */
function applyState(res) {
  S.exam = res.exam;
  S.code = res.code;
  S.attemptId = res.attempt.attempt_id;
  applyTime(res.attempt);
  if (!attemptOpen()) {
    showResult(res.attempt);
    return;
  }
  if (res.paper) {
    setPaper(res.paper);
    mergeAnswers(res.answers || {});
    show('answering');
  } else if (res.sealed) {
    S.sealed = res.sealed;
    if (!S.paper) {
      show('waiting');
      loadNoble().catch(() => {}); // be ready to unseal the moment the start arrives
      watchLateStart();
    }
  }
  render();
}

function applyTime(a) {
  if (a.status) S.attemptStatus = a.status;
  if (a.deadline_ms != null) S.deadlineMs = a.deadline_ms;
  S.paused = !!a.paused;
  S.pausedRemaining = a.remaining_ms ?? null;
  if (typeof a.server_ms === 'number' && S.bestRtt === Infinity) {
    S.offset = a.server_ms - Date.now(); // a rough offset until time.sync gives a better one
  }
  if (S.timeUp && remainingMs() > 0) S.timeUp = false; // extended by the organizer
  tick();
}

function setPaper(paper) {
  S.paper = paper;
  S.byId = new Map(paper.map((q) => [q.id, q]));
  if (S.index >= paper.length) S.index = 0;
}

/** The hub's answers against the local queue: a queued change with a higher seq wins. */
function mergeAnswers(answers) {
  for (const [k, a] of Object.entries(answers)) {
    const qid = Number(k);
    S.server[qid] = { choice: a.choice ?? null, flagged: !!a.flagged, seq: a.seq ?? 0 };
    if ((a.seq ?? 0) > S.lastSeq) {
      S.lastSeq = a.seq;
      store.set(KEYS.seq, String(a.seq));
    }
    const queued = S.queue[qid];
    if (queued && queued.seq <= (a.seq ?? 0)) delete S.queue[qid];
  }
  for (const k of Object.keys(S.queue)) {
    if (!S.byId.has(Number(k))) delete S.queue[k];
  }
  persistQueue();
}

// the start: unseal the paper sent ahead ---------------------------------------------

let noble = null;
function loadNoble() {
  noble = noble || import(cfg.noble_aes);
  return noble;
}

function b64bytes(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function onExamStart(data) {
  if (!data || data.exam_id !== cfg.exam_id) return;
  if (S.exam) S.exam.status = 'open';
  if (typeof data.server_ms === 'number' && S.bestRtt === Infinity) S.offset = data.server_ms - Date.now();
  applyTime({ status: S.attemptStatus === 'pending' ? 'in_progress' : S.attemptStatus, deadline_ms: data.deadline_ms, paused: false });
  if (S.paper || S.phase === 'result') return;
  const key = S.code && data.keys ? data.keys[String(S.code.id)] : null;
  try {
    if (!S.sealed || !key) throw new Error('nothing to unseal');
    const { gcm } = await loadNoble();
    const plain = gcm(b64bytes(key), b64bytes(S.sealed.nonce)).decrypt(b64bytes(S.sealed.data));
    const paper = JSON.parse(new TextDecoder().decode(plain));
    setPaper(paper);
    mergeAnswers({});
    S.sealed = null;
    show('answering');
    render();
    flushQueue();
  } catch (err) {
    console.warn('unseal failed, asking the hub for the paper', err);
    showMessage(t('unseal_failed'));
    // spread the fall-backs out: they all come at the same second.
    setTimeout(() => join(), Math.random() * 3000);
  }
}

let lateTimer = null;
function watchLateStart() {
  // If the start broadcast was missed (it raced our join), ask again now and then,
  // only once the planned time has passed, so idle rooms cost the hub nothing.
  clearTimeout(lateTimer);
  lateTimer = setTimeout(() => {
    if (S.phase !== 'waiting') return;
    const opens = S.exam && S.exam.opens_ms;
    if (!opens || serverNow() > opens + 5000) requestSync();
    watchLateStart();
  }, 45000 + Math.random() * 30000);
}

// the answer queue -------------------------------------------------------------------

function change(qid, patch) {
  if (!canAnswer() || !S.byId.has(qid)) return;
  const cur = view(qid);
  S.queue[qid] = { choice: cur.choice, flagged: cur.flagged, ...patch, seq: nextSeq() };
  persistQueue();
  render();
  flushQueue();
}

function flushQueue() {
  clearTimeout(S.retryTimer);
  S.retryTimer = null;
  if (!socket.connected || !S.joined || !attemptOpen() || !S.paper) {
    renderSaveState();
    return;
  }
  for (const [k, item] of Object.entries(S.queue)) {
    const qid = Number(k);
    if (S.inflight[qid] && S.inflight[qid].seq >= item.seq) continue; // this very change is on its way
    send(qid, item);
  }
  renderSaveState();
}

let sendCounter = 0;
async function send(qid, item) {
  const mine = { seq: item.seq, id: ++sendCounter };
  S.inflight[qid] = mine;
  const res = await call('answer.save', {
    attempt_id: S.attemptId,
    question_id: qid,
    choice_id: item.choice,
    flagged: item.flagged,
    seq: item.seq,
  }, 20000);
  if (S.inflight[qid] === mine) delete S.inflight[qid];
  const queued = S.queue[qid];
  if (res.ok) {
    const seq = typeof res.seq === 'number' ? res.seq : item.seq;
    if (!S.server[qid] || S.server[qid].seq <= seq) S.server[qid] = { choice: item.choice, flagged: item.flagged, seq };
    if (queued && queued.seq <= seq) {
      delete S.queue[qid];
      persistQueue();
    }
    S.backoff = 0;
    if (!Object.keys(S.queue).length) S.retrying = false;
  } else {
    const code = (res.error && res.error.code) || '';
    if (RETRYABLE.has(code) || code === 'exam.not_started') {
      scheduleRetry();
    } else if (code === 'attempt.not_joined') {
      S.joined = false;
      join();
    } else if (code === 'attempt.paused') {
      requestSync(); // the clock is stopped: keep it queued, the resume sends it
    } else {
      if (res.error && res.error.message) showMessage(res.error.message);
      if (queued && queued.seq <= item.seq) {
        delete S.queue[qid];
        persistQueue();
      }
      if (code === 'attempt.closed' || code === 'attempt.deadline_passed') requestSync();
    }
  }
  render();
  settleWaiters();
  if (res.ok && S.queue[qid] && !S.inflight[qid]) flushQueue();
}

function scheduleRetry() {
  S.retrying = true;
  S.backoff = Math.min(10000, Math.max(500, S.backoff * 2));
  clearTimeout(S.retryTimer);
  S.retryTimer = setTimeout(flushQueue, S.backoff * (0.75 + Math.random() * 0.5));
}

const waiters = new Set();
function settleWaiters() {
  for (const w of waiters) w();
}

/** Resolves true once every queued change is acknowledged; false if the link drops or time runs out. */
function queueDrained(ms) {
  return new Promise((resolve) => {
    const done = (value) => {
      waiters.delete(check);
      socket.off('disconnect', onDrop);
      clearTimeout(timer);
      resolve(value);
    };
    const check = () => {
      if (!Object.keys(S.queue).length) done(true);
    };
    const onDrop = () => done(false);
    const timer = setTimeout(() => done(false), ms);
    waiters.add(check);
    socket.on('disconnect', onDrop);
    check();
  });
}

// the clock --------------------------------------------------------------------------

function remainingMs() {
  if (S.deadlineMs == null) return null;
  if (S.paused) return S.pausedRemaining;
  return S.deadlineMs - serverNow();
}

function fmtDuration(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(s).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function fmtLocal(ms) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone: cfg.time_zone, day: '2-digit', month: '2-digit', year: 'numeric',
      hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
    }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]),
  );
  return `${parts.day}/${parts.month}/${parts.year} ${parts.hour}:${parts.minute}`;
}

function tick() {
  // A jump of the wall clock (the phone set its time, or slept) makes the old offset
  // wrong: measure again.
  const wall = Date.now();
  const perf = performance.now();
  if (Math.abs((wall - S.lastWall) - (perf - S.lastPerf)) > 2000) {
    S.bestRtt = Infinity;
    if (socket.connected) timeSync();
  }
  S.lastWall = wall;
  S.lastPerf = perf;

  const el = byTestId('countdown');
  const left = remainingMs();
  if (left == null) {
    const minutes = S.exam ? S.exam.duration_minutes : null;
    el.textContent = minutes ? fmtDuration(minutes * 60000) : '--:--';
    el.dataset.state = 'idle';
  } else {
    el.textContent = fmtDuration(left);
    el.dataset.state = S.paused ? 'paused' : left <= WARN_MS ? 'warn' : 'running';
    el.dataset.remainingMs = String(Math.max(0, Math.round(left)));
  }
  if (S.phase === 'answering' && attemptOpen() && !S.paused && left != null && left <= 0 && !S.timeUp) {
    S.timeUp = true;
    if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
    closeConfirm();
    render();
    flushQueue(); // the grace period still takes answers already made
    pollUntilClosed();
  }
  const pausedEl = field('paused-remaining');
  if (S.paused && left != null) pausedEl.textContent = t('paused_remaining', { time: fmtDuration(left) });
}

let pollTimer = null;
function pollUntilClosed() {
  // The hub closes the attempt and pushes `attempt.closed`; ask too, in case the push is lost.
  clearTimeout(pollTimer);
  pollTimer = setTimeout(() => {
    if (S.phase === 'result' || !S.timeUp) return;
    requestSync();
    pollUntilClosed();
  }, 5000 + Math.random() * 5000);
}

setInterval(tick, 250);

// screens ----------------------------------------------------------------------------

function show(phase) {
  S.phase = phase;
  for (const el of document.querySelectorAll('[data-screen]')) el.hidden = el.dataset.screen !== phase;
  byTestId('submit').hidden = phase !== 'answering';
  byTestId('countdown').hidden = phase === 'result' || phase === 'error';
  document.body.dataset.phase = phase;
}

function showError(message) {
  show('error');
  showMessage(message, true);
}

let messageTimer = null;
function showMessage(text, sticky = false) {
  const el = byTestId('message');
  el.textContent = text;
  el.hidden = !text;
  clearTimeout(messageTimer);
  if (!sticky && text) messageTimer = setTimeout(() => { el.hidden = true; }, 10000);
}

function showResult(a) {
  S.attemptStatus = a.status || S.attemptStatus;
  S.timeUp = false;
  S.paused = false;
  clearTimeout(pollTimer);
  clearTimeout(lateTimer);
  closeConfirm();
  // Nothing more is accepted for this attempt: what is still queued can never be saved.
  S.queue = {};
  persistQueue();
  store.remove(KEYS.index);
  show('result');
  field('result-heading').textContent = a.status === 'submitted' ? t('result_submitted') : t('result_closed');
  const hasScore = typeof a.score === 'number';
  field('result-score-box').hidden = !hasScore;
  field('result-recorded').textContent = t('result_recorded');
  if (hasScore) {
    byTestId('result-score').textContent = new Intl.NumberFormat(cfg.locale, { maximumFractionDigits: 2 }).format(a.score);
    byTestId('result-band').textContent = a.band || '';
    field('result-correct').textContent =
      typeof a.n_correct === 'number' ? t('result_correct', { x: a.n_correct, total: a.n_questions }) : '';
  }
  render();
}

function render() {
  renderHeader();
  renderConnection();
  renderSaveState();
  renderOverlays();
  if (S.phase === 'waiting') renderWaiting();
  if (S.phase === 'answering' && S.paper) {
    renderQuestion();
    renderPalette();
    renderProgress();
  }
  tick();
}

function renderHeader() {
  const label = byTestId('code-label');
  if (S.code) {
    label.textContent = t('code_label', { label: S.code.label });
    label.hidden = false;
  }
}

function renderConnection() {
  const el = byTestId('connection');
  const state = socket.connected ? 'online' : S.phase === 'loading' && !S.netDown ? 'connecting' : 'offline';
  el.dataset.state = state;
  el.textContent = t(state);
}

function renderSaveState() {
  const el = byTestId('save-state');
  const n = Object.keys(S.queue).length;
  let state;
  let text;
  if (S.phase !== 'answering' && S.phase !== 'result') {
    state = 'idle';
    text = '';
  } else if (n === 0) {
    const any = Object.values(S.server).some((a) => a.choice !== null || a.flagged);
    state = any ? 'saved' : 'empty';
    text = any ? t('all_saved') : t('nothing_yet');
    if (S.phase === 'result') text = '';
  } else if (!socket.connected) {
    state = 'offline';
    text = t('n_unsaved_offline', { n });
  } else if (S.retrying) {
    state = 'retrying';
    text = t('n_unsaved_retry', { n });
  } else {
    state = 'saving';
    text = t('n_saving', { n });
  }
  el.dataset.state = state;
  el.dataset.pending = String(n);
  if (el.textContent !== text) el.textContent = text;
  if (S.phase === 'answering' && S.paper) {
    renderQuestionState();
    renderPalette();
  }
}

function renderOverlays() {
  const answering = S.phase === 'answering';
  $('[data-overlay="paused"]').hidden = !(answering && S.paused && attemptOpen());
  $('[data-overlay="timeup"]').hidden = !(answering && S.timeUp);
  document.body.classList.toggle('input-blocked', answering && !canAnswer() && !S.submitting);
}

function renderWaiting() {
  field('code-label').textContent = S.code ? S.code.label : '—';
  if (S.exam) {
    field('n-questions').textContent = String(S.exam.n_questions);
    field('duration').textContent = String(S.exam.duration_minutes);
    const hasOpens = typeof S.exam.opens_ms === 'number';
    field('opens-row').hidden = !hasOpens;
    if (hasOpens) field('opens').textContent = fmtLocal(S.exam.opens_ms);
  }
  field('ready-hint').hidden = !S.sealed;
}

function currentQuestion() {
  return S.paper[Math.min(S.index, S.paper.length - 1)];
}

let renderedQid = null;
function renderQuestion() {
  const q = currentQuestion();
  const v = view(q.id);
  const box = byTestId('question');
  const enabled = canAnswer();
  if (renderedQid !== q.id) {
    renderedQid = q.id;
    box.dataset.questionId = String(q.id);
    field('question-number').textContent = t('question_of', { n: q.n, total: S.paper.length });
    field('question-text').textContent = q.text;
    const list = field('choice-list');
    list.replaceChildren(
      ...q.choices.map((c, i) => {
        const id = `choice-${q.id}-${c.id}`;
        const label = document.createElement('label');
        label.className = 'choice';
        label.htmlFor = id;
        label.dataset.testid = 'choice';
        label.dataset.choiceId = String(c.id);
        const input = document.createElement('input');
        input.type = 'radio';
        input.name = `q-${q.id}`;
        input.id = id;
        input.value = String(c.id);
        input.addEventListener('change', () => {
          if (input.checked) change(q.id, { choice: c.id });
        });
        const letter = document.createElement('span');
        letter.className = 'choice-letter';
        letter.textContent = LETTERS[i] || String(i + 1);
        letter.setAttribute('aria-hidden', 'true');
        const text = document.createElement('span');
        text.className = 'choice-text';
        text.textContent = c.text;
        label.append(input, letter, text);
        return label;
      }),
    );
  }
  for (const input of field('choice-list').querySelectorAll('input')) {
    input.checked = Number(input.value) === v.choice;
    input.disabled = !enabled;
    input.closest('label').classList.toggle('selected', input.checked);
  }
  const flag = byTestId('flag');
  flag.setAttribute('aria-pressed', String(v.flagged));
  flag.lastElementChild.textContent = v.flagged ? t('flag_on') : t('flag_off');
  flag.disabled = !enabled;
  byTestId('clear').disabled = !enabled || v.choice === null;
  byTestId('prev').disabled = S.index <= 0;
  byTestId('next').disabled = S.index >= S.paper.length - 1;
  byTestId('submit').disabled = !enabled;
  renderQuestionState();
}

function renderQuestionState() {
  const q = currentQuestion();
  const el = byTestId('question-save-state');
  const v = view(q.id);
  let state = 'empty';
  if (S.queue[q.id]) state = 'unsaved';
  else if (v.choice !== null || v.flagged) state = 'saved';
  el.dataset.state = state;
  el.textContent = t({ unsaved: 'q_unsaved', saved: 'q_saved', empty: 'q_empty' }[state]);
}

function renderPalette() {
  const grid = field('palette');
  if (grid.childElementCount !== S.paper.length) {
    grid.replaceChildren(
      ...S.paper.map((q, i) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'palette-item';
        b.dataset.testid = 'palette-item';
        b.dataset.questionId = String(q.id);
        b.textContent = String(q.n);
        b.addEventListener('click', () => go(i));
        return b;
      }),
    );
  }
  S.paper.forEach((q, i) => {
    const b = grid.children[i];
    const v = view(q.id);
    const answered = v.choice !== null;
    const unsaved = !!S.queue[q.id];
    b.classList.toggle('answered', answered);
    b.classList.toggle('flagged', v.flagged);
    b.classList.toggle('unsaved', unsaved);
    b.classList.toggle('current', i === S.index);
    b.dataset.state = unsaved ? 'unsaved' : answered ? 'answered' : 'empty';
    if (i === S.index) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
    const states = [t(answered ? 'st_answered' : 'st_empty')];
    if (v.flagged) states.push(t('st_flagged'));
    if (unsaved) states.push(t('st_unsaved'));
    b.setAttribute('aria-label', t('palette_item', { n: q.n, state: states.join(', ') }));
  });
}

function renderProgress() {
  const total = S.paper.length;
  const answered = S.paper.filter((q) => view(q.id).choice !== null).length;
  field('progress-text').textContent = t('answered_of', { x: answered, total });
  const bar = field('progress-bar');
  bar.setAttribute('aria-valuemax', String(total));
  bar.setAttribute('aria-valuenow', String(answered));
  field('progress-fill').style.width = `${total ? (100 * answered) / total : 0}%`;
}

function go(index) {
  if (!S.paper) return;
  S.index = Math.max(0, Math.min(S.paper.length - 1, index));
  store.set(KEYS.index, String(S.index));
  render();
  window.scrollTo({ top: 0, behavior: 'instant' });
}

// submission -------------------------------------------------------------------------

const dialog = byTestId('confirm-dialog');

function closeConfirm() {
  if (dialog.open) dialog.close();
}

function openConfirm() {
  if (!canAnswer()) return;
  if (!socket.connected || !S.joined) {
    showMessage(t('submit_offline'));
    return;
  }
  const unanswered = S.paper.filter((q) => view(q.id).choice === null).length;
  const flagged = S.paper.filter((q) => view(q.id).flagged).length;
  let text = unanswered ? t('confirm_unanswered', { n: unanswered }) : t('confirm_all');
  if (flagged) text += ' ' + t('confirm_flagged', { n: flagged });
  field('confirm-text').textContent = text;
  field('confirm-status').textContent = '';
  setConfirmBusy(false);
  dialog.showModal();
}

function setConfirmBusy(busy, label) {
  const ok = byTestId('confirm-submit');
  ok.disabled = busy;
  byTestId('cancel-submit').disabled = busy;
  ok.textContent = busy ? label : t('submit');
  dialog.dataset.busy = String(busy);
}

async function confirmSubmit() {
  if (S.submitting) return;
  if (!socket.connected || !S.joined) {
    field('confirm-status').textContent = t('submit_offline');
    return;
  }
  S.submitting = true;
  renderOverlays();
  try {
    setConfirmBusy(true, t('saving_before_submit'));
    field('confirm-status').textContent = t('saving_before_submit');
    flushQueue();
    const drained = await queueDrained(30000);
    if (!drained) {
      field('confirm-status').textContent = socket.connected ? t('submit_not_saved') : t('submit_offline');
      return;
    }
    setConfirmBusy(true, t('submitting'));
    field('confirm-status').textContent = t('submitting');
    const res = await call('attempt.submit', { attempt_id: S.attemptId, confirm: true }, 30000);
    if (res.ok) {
      showResult(res);
      return;
    }
    const code = res.error && res.error.code;
    if (code === 'attempt.already_submitted' || code === 'attempt.closed') {
      closeConfirm();
      requestSync();
      return;
    }
    field('confirm-status').textContent =
      (res.error && res.error.message) || (socket.connected ? t('submit_not_saved') : t('submit_offline'));
  } finally {
    S.submitting = false;
    if (dialog.open) setConfirmBusy(false);
    render();
  }
}

// wiring -----------------------------------------------------------------------------

byTestId('prev').addEventListener('click', () => go(S.index - 1));
byTestId('next').addEventListener('click', () => go(S.index + 1));
byTestId('flag').addEventListener('click', () => {
  const q = currentQuestion();
  change(q.id, { flagged: !view(q.id).flagged });
});
byTestId('clear').addEventListener('click', () => change(currentQuestion().id, { choice: null }));
byTestId('submit').addEventListener('click', openConfirm);
byTestId('cancel-submit').addEventListener('click', closeConfirm);
byTestId('confirm-submit').addEventListener('click', confirmSubmit);
dialog.addEventListener('cancel', (e) => {
  if (S.submitting) e.preventDefault();
});

show('loading');
render();
