/* The mosaic keeps itself current: every ten seconds it asks the hub for each bridge
 * point's latest snapshot and figures, and redraws only the tiles that changed. A failed
 * poll leaves the tiles as they are and says so; the next one tries again. */
(() => {
  const POLL_MS = 10000;
  const root = document.getElementById("mosaic");
  if (!root) return;
  const T = JSON.parse(document.getElementById("mosaic-i18n").textContent);
  const status = document.getElementById("mosaic-status");
  const t = (key, values) => String(T[key]).replace(/\{(\w+)\}/g, (_, k) => (values && k in values ? values[k] : ""));
  const clock = new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });

  function render(tile) {
    const li = root.querySelector(`li[data-bp="${tile.bridge_point_id}"]`);
    if (!li) return;
    const snap = tile.snapshot;
    const link = li.querySelector(".tile-image");
    const img = link.querySelector("img");
    if (snap && (!img || img.getAttribute("src") !== snap.url)) {
      const next = document.createElement("img");
      next.alt = t("image_of", { code: tile.code });
      next.src = snap.url;
      link.replaceChildren(next);
    } else if (!snap && img) {
      const span = document.createElement("span");
      span.className = "no-image";
      span.textContent = T.no_image;
      link.replaceChildren(span);
    }
    let count = "";
    if (snap && snap.headcount !== null) count = t("people", { n: snap.headcount });
    else if (snap && snap.status === "pending") count = T.analysing;
    li.querySelector('[data-role="count"]').textContent = count;
    const meta = [];
    if (snap) meta.push(snap.taken);
    if (tile.attended !== null) meta.push(t("attended", { a: tile.attended, r: tile.registered }));
    if (snap && snap.issues.length) meta.push(snap.issues.join(", "));
    li.querySelector('[data-role="meta"]').textContent = meta.join(" · ");
    li.querySelector('[data-role="flags"]').textContent = tile.open_flags ? t("flags", { n: tile.open_flags }) : "";
    li.classList.toggle("has-flags", tile.open_flags > 0);
  }

  async function poll() {
    try {
      const resp = await fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (resp.status === 401 || resp.redirected) { location.reload(); return; }
      const data = resp.ok ? await resp.json() : null;
      if (!data || !data.ok) throw new Error("poll failed");
      data.tiles.forEach(render);
      status.textContent = t("updated", { t: clock.format(new Date()) });
    } catch (e) {
      status.textContent = T.offline;
    }
    setTimeout(poll, POLL_MS);
  }
  setTimeout(poll, POLL_MS);
})();
