/* The organizers' live board: counts per district, pulled from the hub's /board namespace.
 *
 * The hub pushes only a tiny "board.changed" hint; the numbers are pulled with
 * "board.stats" every POLL_MS, so a board that missed a hint (a dropped connection in a
 * mountain district) is right again two seconds later. Reconnection is automatic; a
 * refused connection (an expired token) fetches a fresh token and tries again.
 */
(function () {
  "use strict";

  var POLL_MS = 2000;
  var ACK_TIMEOUT_MS = 8000;
  var STALE_MS = 10000;
  var REFUSED_RETRY_MS = [2000, 5000, 10000, 30000];

  var root = document.getElementById("board");
  if (!root) return;
  var T = JSON.parse(document.getElementById("board-i18n").textContent);
  var examId = Number(root.dataset.examId);
  var token = root.dataset.token;
  var tokenUrl = root.dataset.tokenUrl;

  var el = {
    conn: document.getElementById("conn"),
    status: document.getElementById("exam-status"),
    countdown: document.getElementById("countdown"),
    deadline: document.getElementById("deadline"),
    updated: document.getElementById("updated"),
    districts: document.getElementById("districts"),
  };

  var state = {
    status: root.dataset.status,
    deadlineMs: null,
    offsetMs: 0,          // server clock − this machine's clock
    samples: [],          // recent {rtt, offset}: the fastest round trip is the best estimate
    lastUpdate: 0,
    watching: false,      // joined the exam's board room on this connection
    inFlight: false,
    again: false,         // a change arrived while a request was in flight
    refusals: 0,
  };
  var rows = {};          // district_id → {tr, cells}

  // formatting ---------------------------------------------------------------------
  var numberFormat = new Intl.NumberFormat("vi-VN");
  function fmtNumber(n) { return numberFormat.format(n || 0); }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function t(key, n) { return String(T[key]).replace("{n}", n); }

  var vnParts = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Asia/Ho_Chi_Minh", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  function vnTime(ms) {
    var p = {};
    vnParts.formatToParts(new Date(ms)).forEach(function (part) { p[part.type] = part.value; });
    return p;
  }
  function fmtDateTime(ms) {
    var p = vnTime(ms);
    return p.day + "/" + p.month + "/" + p.year + " " + p.hour + ":" + p.minute;
  }
  function fmtClock(ms) {
    var p = vnTime(ms);
    return p.hour + ":" + p.minute + ":" + p.second;
  }
  function fmtRemaining(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    return pad(Math.floor(s / 3600)) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
  }
  function serverNow() { return Date.now() + state.offsetMs; }

  // connection state ---------------------------------------------------------------
  function setConn(kind, text) {
    el.conn.className = "conn conn-" + kind;
    el.conn.textContent = text;
  }

  if (typeof io !== "function") {
    setConn("offline", T.refused);
    return;
  }

  var socket = io("/board", {
    // evaluated at every (re)connection, so a refreshed token is used at once.
    auth: function (cb) { cb({ token: token }); },
    reconnectionDelay: 1000,
    reconnectionDelayMax: 10000,
    timeout: 10000,
  });

  socket.on("connect", function () {
    state.refusals = 0;
    state.watching = false;
    state.inFlight = false;
    setConn("online", T.online);
    pull();
  });

  socket.on("disconnect", function (reason) {
    state.watching = false;
    setConn("offline", T.offline);
    // the server closed this socket on purpose: the client will not retry by itself.
    if (reason === "io server disconnect") setTimeout(function () { socket.connect(); }, 2000);
  });

  socket.io.on("reconnect_attempt", function (n) { setConn("offline", t("retrying", n)); });

  socket.on("connect_error", function (err) {
    if (socket.active) {
      setConn("offline", T.offline);  // a network error: the manager retries by itself
      return;
    }
    // refused by the server (most likely an expired token): get a fresh token, retry.
    var wait = REFUSED_RETRY_MS[Math.min(state.refusals, REFUSED_RETRY_MS.length - 1)];
    state.refusals += 1;
    refreshToken().then(function (ok) {
      if (!ok) {
        setConn("expired", T.expired);
        return;
      }
      setConn("offline", T.refused + ": " + refusalMessage(err));
      setTimeout(function () { socket.connect(); }, wait);
    });
  });

  socket.on("board.changed", function (data) {
    if (!data || data.exam_id === examId) pull();
  });

  function refusalMessage(err) {
    if (err && err.data && err.data.message) return err.data.message;
    var text = (err && err.message) || "";
    var m = /'message': '([^']*)'/.exec(text);
    return m ? m[1] : text;
  }

  function refreshToken() {
    return fetch(tokenUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (data) {
        if (data && data.ok && data.token) {
          token = data.token;
          return true;
        }
        return false;
      })
      .catch(function () { return false; });
  }

  // pulling the numbers --------------------------------------------------------------
  function pull() {
    if (!socket.connected) return;
    if (state.inFlight) {
      state.again = true;
      return;
    }
    state.inFlight = true;
    state.again = false;
    var event = state.watching ? "board.stats" : "board.watch";
    var t0 = Date.now();
    socket.timeout(ACK_TIMEOUT_MS).emit(event, { exam_id: examId }, function (err, ack) {
      state.inFlight = false;
      if (!err && ack && ack.ok) {
        if (event === "board.watch") state.watching = true;
        measureClock(ack.server_ms, t0, Date.now());
        render(ack);
      } else if (!err && ack && ack.error) {
        setConn("offline", T.refused + ": " + ack.error.message);
      }
      if (state.again) pull();
    });
  }

  function measureClock(serverMs, t0, t1) {
    if (typeof serverMs !== "number") return;
    state.samples.push({ rtt: t1 - t0, offset: serverMs - (t0 + t1) / 2 });
    if (state.samples.length > 10) state.samples.shift();
    var best = state.samples.reduce(function (a, b) { return b.rtt < a.rtt ? b : a; });
    state.offsetMs = best.offset;
  }

  setInterval(pull, POLL_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) pull();
  });

  // rendering -----------------------------------------------------------------------
  function render(data) {
    state.status = data.status;
    state.deadlineMs = data.deadline_ms;
    state.lastUpdate = Date.now();
    el.status.textContent = T.status[data.status] || data.status;
    el.status.className = "badge status status-" + data.status;
    el.deadline.textContent = data.deadline_ms ? fmtDateTime(data.deadline_ms) : "—";
    el.updated.textContent = fmtClock(serverNow());
    root.classList.remove("stale");
    renderTotals(data.total || {});
    renderDistricts(data.districts || []);
    tick();
  }

  function renderTotals(total) {
    root.querySelectorAll("[data-total]").forEach(function (node) {
      node.textContent = fmtNumber(total[node.dataset.total]);
    });
    root.querySelectorAll("[data-total-sub]").forEach(function (node) {
      node.textContent = t("early", fmtNumber(total[node.dataset.totalSub]));
    });
    root.querySelector(".total-paused").classList.toggle("alert", (total.paused || 0) > 0);
  }

  function cell(tr, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    tr.appendChild(td);
    return td;
  }

  function makeRow() {
    var tr = document.createElement("tr");
    var cells = {
      name: cell(tr),
      registered: cell(tr, "num"),
      connected: cell(tr, "num"),
      started: cell(tr, "num"),
      finished: cell(tr, "num"),
      paused: cell(tr, "num"),
      progress: cell(tr, "progress-col"),
    };
    var bar = document.createElement("div");
    bar.className = "bar";
    var done = document.createElement("span");
    done.className = "seg seg-finished";
    var working = document.createElement("span");
    working.className = "seg seg-started";
    bar.appendChild(done);
    bar.appendChild(working);
    var pct = document.createElement("span");
    pct.className = "pct";
    var wrap = document.createElement("div");
    wrap.className = "progress";
    wrap.appendChild(bar);
    wrap.appendChild(pct);
    cells.progress.appendChild(wrap);
    cells.bar = bar;
    cells.done = done;
    cells.working = working;
    cells.pct = pct;
    return { tr: tr, cells: cells };
  }

  function share(part, whole) { return whole > 0 ? Math.min(100, (100 * part) / whole) : 0; }

  function renderDistricts(districts) {
    var body = el.districts;
    var placeholder = body.querySelector(".placeholder");
    if (!districts.length) {
      body.textContent = "";
      rows = {};
      var tr = document.createElement("tr");
      tr.className = "placeholder";
      var td = cell(tr);
      td.colSpan = 7;
      td.textContent = T.empty;
      body.appendChild(tr);
      return;
    }
    if (placeholder) placeholder.remove();
    var seen = {};
    districts.forEach(function (d) {
      var key = String(d.district_id);
      seen[key] = true;
      var row = rows[key] || (rows[key] = makeRow());
      var c = row.cells;
      c.name.textContent = d.district;
      c.registered.textContent = fmtNumber(d.registered);
      c.connected.textContent = fmtNumber(d.connected);
      c.started.textContent = fmtNumber(d.started);
      c.finished.textContent = fmtNumber(d.finished);
      c.paused.textContent = fmtNumber(d.paused);
      row.tr.classList.toggle("has-paused", d.paused > 0);
      var finished = share(d.finished, d.registered);
      var working = Math.max(0, share(d.started, d.registered) - finished);
      c.done.style.width = finished.toFixed(1) + "%";
      c.working.style.width = working.toFixed(1) + "%";
      c.pct.textContent = Math.round(share(d.started, d.registered)) + "%";
      c.bar.title = fmtNumber(d.started) + " / " + fmtNumber(d.registered);
      body.appendChild(row.tr);  // keeps the server's order (by district name)
    });
    Object.keys(rows).forEach(function (key) {
      if (!seen[key]) {
        rows[key].tr.remove();
        delete rows[key];
      }
    });
  }

  // the clock --------------------------------------------------------------------
  function tick() {
    var text;
    if (state.status === "draft" || state.status === "scheduled" || !state.deadlineMs) {
      text = T.not_started;
    } else {
      var left = state.deadlineMs - serverNow();
      text = left > 0 && state.status === "open" ? fmtRemaining(left) : T.time_up;
    }
    el.countdown.textContent = text;
    el.countdown.classList.toggle("soon", state.status === "open" && state.deadlineMs - serverNow() < 5 * 60000);
    if (state.lastUpdate && Date.now() - state.lastUpdate > STALE_MS) {
      root.classList.add("stale");
      el.updated.title = T.stale;
    }
  }
  setInterval(tick, 250);
  tick();
})();
