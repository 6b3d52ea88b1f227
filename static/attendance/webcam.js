/* The learner's own webcam during a test taken on their own device.
 *
 * startWebcamProctoring({attemptId, uploadUrl, onState, ...}) says on screen that the
 * camera is used and why, takes a selfie at the start (the hub checks it shows exactly
 * one face; the learner may retake it up to `selfieTries` times, then the hub flags it
 * and the test goes on), then snapshots at random moments between `minSec` and
 * `maxSec`. It reports a refused or lost camera and the page hidden or left. Nothing
 * here ever blocks the test: the proctors judge the flags afterwards. Texts come from
 * the page (translated).
 */
import { Uploader, fill, grabJpeg, isRefusal, openCamera, postReport } from "./camera.js";

const VERDICT_POLL_MS = 1000;
const VERDICT_WAIT_MS = 30000;
const SELFIE_SETTLE_MS = 1200;
const BLUR_REPORT_MS = 10000;
const REOPEN_MS = 10000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Options: attemptId, uploadUrl, reportUrl, verdictUrl, minSec, maxSec, selfieTries,
 * onState(state, detail), texts, root (element holding the notice: [data-webcam-notice],
 * [data-webcam-status], [data-webcam-retake]), stopWhen() (e.g. the result screen shown).
 * Returns a controller: {stop(), stats}.
 */
export function startWebcamProctoring({
  attemptId, uploadUrl, reportUrl, verdictUrl, minSec = 120, maxSec = 360, selfieTries = 3,
  onState = () => {}, texts = {}, root = null, stopWhen = () => false,
}) {
  const stats = { state: "starting", selfies: 0, selfieOk: null, sent: 0, reports: 0 };
  const $ = (sel) => (root ? root.querySelector(sel) : null);
  const status = $("[data-webcam-status]");
  const retake = $("[data-webcam-retake]");
  if (root) {
    const notice = $("[data-webcam-notice]");
    if (notice) notice.textContent = texts.notice || "";
    root.hidden = false;
  }
  if (retake) {
    retake.textContent = texts.retake || "";
    retake.hidden = true;
  }
  let cam = null;
  let stopped = false;
  let randomTimer = null;
  let blurTimer = null;

  function setState(state, detail = {}, text = null) {
    stats.state = state;
    if (status) {
      status.textContent = text ?? texts[state] ?? "";
      status.dataset.state = state;
    }
    if (root) root.dataset.state = state;
    try { onState(state, detail); } catch (err) { /* never let the page's callback stop us */ }
  }

  function report(event, detail = {}) {
    if (!reportUrl || stopped) return;
    stats.reports += 1;
    postReport(reportUrl, { camera: "webcam", event, attempt_id: attemptId, detail });
  }

  const pendingSelfies = new Map();
  const uploader = new Uploader({
    url: uploadUrl,
    fields: { attempt_id: attemptId },
    onRetry: () => { if (stats.state !== "selfie_checking") setState("retrying"); },
    onResult: (item, ack) => {
      if (ack.ok) stats.sent += 1;
      if (!ack.ok && ack.error && ack.error.code === "snapshot.attempt_closed") stop();
      const waiting = pendingSelfies.get(item);
      if (waiting) {
        pendingSelfies.delete(item);
        waiting(ack);
      } else if (ack.ok && stats.state === "retrying") {
        setState("on");
      }
    },
  });

  function uploadSelfie(blob) {
    return new Promise((resolve) => {
      uploader.push(blob, "selfie");
      const item = uploader.queue[uploader.queue.length - 1];
      pendingSelfies.set(item, resolve);
    });
  }

  async function verdictOf(id) {
    const until = Date.now() + VERDICT_WAIT_MS;
    while (Date.now() < until && !stopped) {
      await sleep(VERDICT_POLL_MS);
      try {
        const resp = await fetch(verdictUrl + id, { credentials: "same-origin", headers: { Accept: "application/json" } });
        const data = resp.ok ? await resp.json() : null;
        if (data && data.selfie) return data.selfie;
      } catch (err) { /* offline: ask again */ }
    }
    return null;  // not analysed in time: the hub still judges it; the test goes on
  }

  async function selfie() {
    if (!cam || stopped) return;
    if (retake) retake.hidden = true;
    setState("selfie_taking");
    await sleep(SELFIE_SETTLE_MS);
    const blob = await grabJpeg(cam.video);
    if (!blob) return;
    stats.selfies += 1;
    setState("selfie_checking");
    const ack = await uploadSelfie(blob);
    const result = ack.ok ? await verdictOf(ack.id) : { ok: false, message: (ack.error && ack.error.message) || "" };
    if (result && result.ok) {
      stats.selfieOk = true;
      setState("selfie_ok");
    } else if (!result) {
      setState("on");
    } else if (stats.selfies < selfieTries) {
      stats.selfieOk = false;
      setState("selfie_retry", result, fill(texts.selfie_retry, { reason: result.message, n: selfieTries - stats.selfies }));
      if (retake) retake.hidden = false;
    } else {
      stats.selfieOk = false;
      setState("selfie_failed", result);
    }
    scheduleRandom();
  }

  function scheduleRandom() {
    if (randomTimer || stopped) return;
    const lo = Math.max(1, minSec);
    const hi = Math.max(lo, maxSec);
    const wait = (lo + Math.random() * (hi - lo)) * 1000;
    randomTimer = setTimeout(async () => {
      randomTimer = null;
      if (stopped) return;
      if (stopWhen()) { stop(); return; }
      if (cam) uploader.push(await grabJpeg(cam.video), "random");
      scheduleRandom();
    }, wait);
  }

  async function open(first) {
    if (stopped) return;
    setState("starting");
    try {
      cam = await openCamera();
    } catch (err) {
      const refused = isRefusal(err);
      setState(refused ? "refused" : "lost", { error: err && err.name });
      report(refused ? "camera_refused" : "camera_lost", { error: String(err && err.name) });
      if (!refused) setTimeout(() => open(first), REOPEN_MS);
      return;
    }
    cam.stream.getVideoTracks().forEach((track) => track.addEventListener("ended", () => {
      if (stopped) return;
      cam = null;
      setState("lost");
      report("camera_lost", { how: "ended" });
      setTimeout(() => open(false), REOPEN_MS);
    }));
    setState("on");
    if (first) selfie();
    else scheduleRandom();
  }

  // the page hidden, left, or out of focus for a while --------------------------------------
  let hiddenAt = null;
  function onVisibility() {
    if (document.visibilityState === "hidden") {
      hiddenAt = Date.now();
      report("page_hidden", { how: "hidden" });
    } else if (hiddenAt) {
      setState(stats.state, {}, texts.hidden);
      hiddenAt = null;
    }
  }
  function onBlur() {
    clearTimeout(blurTimer);
    blurTimer = setTimeout(() => {
      if (document.visibilityState === "visible" && !document.hasFocus()) report("page_hidden", { how: "blur", hidden_ms: BLUR_REPORT_MS });
    }, BLUR_REPORT_MS);
  }
  function onFocus() { clearTimeout(blurTimer); }
  function onPageHide() { report("page_left", { how: "pagehide" }); }
  document.addEventListener("visibilitychange", onVisibility);
  window.addEventListener("blur", onBlur);
  window.addEventListener("focus", onFocus);
  window.addEventListener("pagehide", onPageHide);
  if (retake) retake.addEventListener("click", () => { if (stats.selfies < selfieTries) selfie(); });

  function stop() {
    if (stopped) return;
    stopped = true;
    clearTimeout(randomTimer);
    clearTimeout(blurTimer);
    uploader.stop();
    document.removeEventListener("visibilitychange", onVisibility);
    window.removeEventListener("blur", onBlur);
    window.removeEventListener("focus", onFocus);
    window.removeEventListener("pagehide", onPageHide);
    if (cam) cam.stream.getTracks().forEach((t) => t.stop());
    cam = null;
    if (retake) retake.hidden = true;
    setState("stopped", {}, "");
  }

  open(true);
  return { stats, stop };
}
