/* The control room: every bridge point in the organizer's scope, live.
 *
 * The hub pushes only a hint ("control.changed", after each batch of kiosk reports);
 * the grid itself is pulled with "control.grid", on a hint and every POLL_MS, so a
 * site that goes silent turns red here even though nothing is pushed about it.
 */
const POLL_MS = 5000;
const MIN_PULL_GAP_MS = 1500;
const ACK_TIMEOUT_MS = 8000;

const root = document.getElementById("control");
const T = JSON.parse(document.getElementById("control-i18n").textContent);
const $ = (id) => document.getElementById(id);
const el = {
  conn: $("conn"), district: $("district"), onlyProblems: $("only-problems"), updated: $("updated"),
  tiles: $("tiles"), alertsBox: $("alerts-box"), alerts: $("alerts"),
  form: $("announce-form"), target: $("target"), targetSites: $("target-sites"), message: $("message"),
  send: $("send"), announceMsg: $("announce-msg"), sent: $("sent"), noSent: $("no-sent"),
};
const t = (key, values) => String(T[key]).replace(/\{(\w+)\}/g, (_, k) => (values && k in values ? values[k] : ""));
const numberFormat = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 1 });
const fmt = (n) => (typeof n === "number" ? numberFormat.format(n) : "–");
const clock = new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
const vnParts = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
function dayTime(ms) {
  const p = {};
  vnParts.formatToParts(new Date(ms)).forEach((part) => { p[part.type] = part.value; });
  return p.hour + ":" + p.minute + " " + p.day + "/" + p.month;
}

const state = { token: root.dataset.token, watching: false, inFlight: false, again: false, lastPull: 0, grid: null };
const tiles = new Map();  // site id → {li, parts}

// socket ---------------------------------------------------------------------------------
function setConn(kind, text) {
  el.conn.className = "conn conn-" + kind;
  el.conn.textContent = text;
}
const live = io("/live", {
  auth: (cb) => cb({ token: state.token }),
  reconnectionDelay: 1000,
  reconnectionDelayMax: 10000,
  timeout: 10000,
});
live.on("connect", () => { state.watching = false; state.inFlight = false; setConn("online", T.online); pull(); });
live.on("disconnect", (reason) => {
  state.watching = false;
  setConn("offline", T.offline);
  root.classList.add("stale");
  if (reason === "io server disconnect") setTimeout(() => live.connect(), 2000);
});
live.io.on("reconnect_attempt", (n) => setConn("offline", t("retrying", { n })));
live.on("connect_error", () => {
  if (live.active) { setConn("offline", T.offline); return; }
  fetch(root.dataset.tokenUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : null))
    .then((data) => {
      if (data && data.ok) { state.token = data.token; setTimeout(() => live.connect(), 2000); }
      else setConn("expired", T.expired);
    })
    .catch(() => setTimeout(() => live.connect(), 5000));
});
live.on("control.changed", () => schedulePull());

function call(event, payload) {
  return new Promise((resolve) => {
    live.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err, ack) => {
      resolve(err || !ack ? { ok: false, error: { code: "timeout", message: T.offline } } : ack);
    });
  });
}

let pullTimer = null;
function schedulePull() {
  const wait = Math.max(0, state.lastPull + MIN_PULL_GAP_MS - Date.now());
  clearTimeout(pullTimer);
  pullTimer = setTimeout(pull, wait);
}

async function pull() {
  if (!live.connected) return;
  if (state.inFlight) { state.again = true; return; }
  state.inFlight = true;
  state.again = false;
  state.lastPull = Date.now();
  const districtId = el.district.value ? Number(el.district.value) : null;
  const event = state.watching ? "control.grid" : "control.watch";
  const ack = await call(event, { district_id: districtId });
  state.inFlight = false;
  if (ack.ok) {
    if (event === "control.watch") state.watching = true;
    render(ack);
  } else if (ack.error && ack.error.code !== "timeout") {
    setConn("expired", ack.error.message);
  }
  if (state.again) pull();
}
setInterval(pull, POLL_MS);
el.district.addEventListener("change", () => { tiles.forEach((tile) => tile.li.remove()); tiles.clear(); pull(); });
el.onlyProblems.addEventListener("change", () => state.grid && render(state.grid));

// rendering --------------------------------------------------------------------------------
function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return t("seconds", { n: s });
  if (s < 3600) return t("minutes", { m: Math.floor(s / 60), s: s % 60 });
  return t("hours", { h: Math.floor(s / 3600), m: Math.floor(s / 60) % 60 });
}

function healthClass(site) {
  if (!site.online) return site.last_seen_ms ? (site.alert ? "s-alert" : "s-offline") : "s-never";
  const h = site.health || {};
  if (h.state === "error" || h.state === "stalled") return "s-bad";
  if ((h.buffer_s ?? 1) < 0.5 || (h.rtt_ms ?? 0) > 800 || (h.dropped ?? 0) > 20) return "s-weak";
  return "s-online";
}

function part(parent, tag, cls) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  parent.append(node);
  return node;
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

function makeTile(site) {
  const li = document.createElement("li");
  li.className = "tile";
  li.dataset.siteId = site.id;
  const head = part(li, "div", "tile-head");
  const p = {
    code: part(head, "strong", "tile-code"),
    status: part(head, "span", "tile-status"),
    name: part(li, "p", "tile-name"),
    lecture: part(li, "p", "tile-lecture"),
    health: part(li, "p", "tile-health"),
    seen: part(li, "p", "tile-seen"),
    mode: part(li, "p", "tile-mode"),
  };
  const actions = part(li, "div", "tile-actions");
  p.msg = part(actions, "button", "btn btn-small");
  p.msg.type = "button";
  p.msg.textContent = T.message_site;
  p.msg.addEventListener("click", () => {
    el.target.value = "site:" + site.id;
    el.message.focus();
  });
  p.audio = part(actions, "button", "btn btn-small");
  p.audio.type = "button";
  p.audio.dataset.action = "audio";
  p.audio.addEventListener("click", async () => {
    const tile = tiles.get(site.id);
    const ack = await call("control.audio_only", { bridge_point_id: site.id, on: !tile.site.forced_audio_only });
    if (ack.ok) { tile.site.forced_audio_only = ack.forced_audio_only; pull(); }
    else window.alert(ack.error.message);
  });
  return { li, p, site };
}

function fillTile(tile, site) {
  tile.site = site;
  const { li, p } = tile;
  const cls = healthClass(site);
  li.className = "tile " + cls;
  li.dataset.online = site.online ? "1" : "0";
  li.dataset.alert = site.alert ? "1" : "0";
  p.code.textContent = site.code;
  p.status.textContent = site.online ? T.state_online : site.last_seen_ms ? T.state_offline : T.state_never;
  p.name.textContent = site.name + " · " + site.district;
  p.lecture.textContent = site.lecture_title ? t("watching", { title: site.lecture_title }) : T.not_watching;
  p.health.textContent = site.online ? healthText(site.health) || T.no_health : "";
  p.health.hidden = !site.online;
  if (!site.last_seen_ms) p.seen.textContent = T.never;
  else if (site.online) p.seen.textContent = t("last_seen", { time: clock.format(new Date(site.last_seen_ms)) });
  else p.seen.textContent = t("offline_for", { duration: duration(site.silent_s) });
  p.mode.textContent = site.forced_audio_only ? T.forced : site.audio_only ? T.own_audio : "";
  p.mode.hidden = !p.mode.textContent;
  p.audio.textContent = site.forced_audio_only ? T.unforce_audio : T.force_audio;
  p.audio.setAttribute("aria-pressed", String(site.forced_audio_only));
}

function render(grid) {
  state.grid = grid;
  root.classList.remove("stale");
  el.updated.textContent = t("updated", { time: clock.format(new Date(grid.server_ms)) });
  root.querySelectorAll("[data-total]").forEach((node) => { node.textContent = fmt(grid.total[node.dataset.total]); });
  root.querySelector(".total-alerts").classList.toggle("alert", grid.total.alerts > 0);

  const onlyProblems = el.onlyProblems.checked;
  const seen = new Set();
  const placeholder = el.tiles.querySelector(".placeholder");
  if (placeholder) placeholder.remove();
  grid.sites.forEach((site) => {
    const problem = !site.online || ["s-bad", "s-weak"].includes(healthClass(site)) || site.forced_audio_only;
    if (onlyProblems && !problem) return;
    seen.add(site.id);
    let tile = tiles.get(site.id);
    if (!tile) { tile = makeTile(site); tiles.set(site.id, tile); }
    fillTile(tile, site);
    el.tiles.append(tile.li);  // the server's order: district, then code
  });
  tiles.forEach((tile, id) => { if (!seen.has(id)) { tile.li.remove(); tiles.delete(id); } });
  if (!seen.size) {
    const li = part(el.tiles, "li", "tile placeholder");
    li.textContent = T.empty;
  }

  const alerts = grid.sites.filter((s) => s.alert);
  el.alertsBox.hidden = !alerts.length;
  el.alerts.textContent = "";
  alerts.forEach((s) => {
    const li = part(el.alerts, "li");
    li.dataset.siteId = s.id;
    const name = part(li, "strong");
    name.textContent = s.code + " · " + s.name;
    const when = part(li, "span");
    when.textContent = t("offline_for", { duration: duration(s.silent_s) });
  });

  const current = el.target.value;
  el.targetSites.textContent = "";
  grid.sites.forEach((s) => el.targetSites.append(new Option(s.code + " · " + s.name, "site:" + s.id)));
  if ([...el.target.options].some((o) => o.value === current)) el.target.value = current;
}

// announcements ----------------------------------------------------------------------------
el.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = el.message.value.trim();
  if (!text || !el.target.value) return;
  const [target, id] = el.target.value.split(":");
  const payload = { target, text };
  if (id) payload.id = Number(id);
  el.send.disabled = true;
  const ack = await call("control.announce", payload);
  el.send.disabled = false;
  el.announceMsg.hidden = false;
  el.announceMsg.className = "upload-msg " + (ack.ok ? "ok" : "error");
  el.announceMsg.textContent = ack.ok ? T.sent : ack.error.message;
  if (!ack.ok) return;
  el.message.value = "";
  const li = document.createElement("li");
  const head = part(li, "span", "muted");
  head.textContent = dayTime(ack.announcement.created_ms) + " · " + el.target.selectedOptions[0].textContent;
  const body = part(li, "p");
  body.textContent = ack.announcement.text;
  el.sent.prepend(li);
  el.noSent.hidden = true;
});

window.control = { state, live, pull };
