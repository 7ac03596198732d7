// The live comparison panel of the index page: N concurrent requests at every side at once,
// one SVG bar per request from send to last byte, and the server's own counters beside them.
//
// Browsers open at most 6 HTTP/1.1 connections per host, so N requests to one host would queue
// in the browser and look like a server that serves 6 at a time. When the page is on a loopback
// address, each request goes to its own name under *.localhost (browsers resolve those to the
// loopback address themselves, RFC 6761), so every request has its own connection. Those are
// cross-origin, "no-cors" requests: the browser still reports when the response arrived and lets
// us abort it, but hides its status; the server's counters say how each request ended.
"use strict";

(() => {
  const panel = document.getElementById("compare");
  if (!panel) return;

  const labels = JSON.parse(panel.dataset.sides);
  const form = panel.querySelector("form");
  const statusLine = panel.querySelector(".status");
  const countersBox = panel.querySelector(".counters");
  const svg = panel.querySelector("svg.timeline");
  const SVG = "http://www.w3.org/2000/svg";
  const COUNTERS = [
    ["in_flight", "in flight"],
    ["peak_in_flight", "peak"],
    ["completed", "completed"],
    ["abandoned", "abandoned"],
  ];
  const POLL_MS = 250;
  const SETTLE_MS = 10000;
  const spread = ["127.0.0.1", "localhost", "[::1]"].includes(location.hostname);

  let sides = [];
  let latest = null;
  let baseline = null;
  let runs = 0;

  // --- The server's counters: the WebSocket feed when the server has one, else polling /stats.

  async function fetchStats(method = "GET") {
    const response = await fetch("stats", { method, cache: "no-store" });
    if (!response.ok) throw new Error(`/stats answered ${response.status}`);
    return response.json();
  }

  function poll() {
    panel.dataset.feed = "polling";
    const tick = () =>
      fetchStats()
        .then(show)
        .catch(() => {})
        .finally(() => setTimeout(tick, POLL_MS));
    tick();
  }

  function listen() {
    const url = new URL(panel.dataset.live, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    let fellBack = false;
    const fallBack = () => {
      if (!fellBack) {
        fellBack = true;
        poll();
      }
    };
    let socket;
    try {
      socket = new WebSocket(url);
    } catch {
      fallBack();
      return;
    }
    socket.onopen = () => (panel.dataset.feed = "websocket");
    socket.onmessage = (event) => show(JSON.parse(event.data));
    socket.onerror = fallBack;
    socket.onclose = fallBack;
  }

  // --- Counters per side.

  function buildCards(snapshot) {
    sides = Object.keys(labels).filter((name) => name in snapshot);
    countersBox.replaceChildren(
      ...sides.map((name, i) => {
        const card = element("div", { class: "side-card", "data-side": name });
        card.style.setProperty("--side-colour", `var(--side-${i % 4})`);
        card.append(element("h3", {}, `${name} · ${labels[name]}`), element("div", { class: "result" }));
        const list = element("dl");
        for (const [key, text] of COUNTERS) {
          const value = element("dd", { "data-counter": key }, "0");
          value.append(element("small"));
          const item = element("div", {}, element("dt", {}, text));
          item.append(value);
          list.append(item);
        }
        card.append(list);
        return card;
      }),
    );
  }

  function show(snapshot) {
    latest = snapshot;
    if (!sides.length) buildCards(snapshot);
    for (const name of sides) {
      const counters = snapshot[name];
      if (!counters) continue;
      for (const [key] of COUNTERS) {
        const cell = countersBox.querySelector(`[data-side="${name}"] [data-counter="${key}"]`);
        cell.firstChild.nodeValue = String(counters[key]);
        const delta = baseline && key !== "in_flight" && key !== "peak_in_flight" ? counters[key] - baseline[name][key] : 0;
        cell.querySelector("small").textContent = delta > 0 ? `+${delta} this run` : "";
      }
    }
  }

  // --- The timeline.

  const layout = { width: 640, left: 8, right: 12, axis: 26 };

  function drawFrame(requests, n, delay, now) {
    // Drawn at the element's own width, so that text keeps its size on a phone.
    layout.width = Math.max(280, Math.round(svg.clientWidth) || 640);
    const rowHeight = Math.max(3, Math.min(10, 160 / n));
    const groupHeight = 20 + n * rowHeight + 10;
    const height = sides.length * groupHeight + layout.axis;
    const ends = requests.map((r) => r.end ?? now);
    const span = Math.max(delay * 1.25 + 0.1, ...ends.map((t) => t * 1.05));
    const plotWidth = layout.width - layout.left - layout.right;
    const x = (t) => layout.left + (t / span) * plotWidth;
    svg.setAttribute("viewBox", `0 0 ${layout.width} ${height}`);
    const parts = [];
    const axisY = height - layout.axis + 4;
    for (const t of ticks(span)) {
      parts.push(element("line", { class: "grid", x1: x(t), x2: x(t), y1: 0, y2: axisY }, null, SVG));
      parts.push(element("text", { x: x(t), y: axisY + 14, "text-anchor": "middle" }, `${+t.toFixed(2)} s`, SVG));
    }
    parts.push(element("line", { class: "delay-line", x1: x(delay), x2: x(delay), y1: 0, y2: axisY }, null, SVG));
    sides.forEach((name, i) => {
      const top = i * groupHeight;
      const group = element("g", { "data-side": name }, null, SVG);
      group.style.setProperty("--side-colour", `var(--side-${i % 4})`);
      group.append(element("text", { class: "side-title", x: layout.left, y: top + 14 }, `${name} · ${labels[name]}`, SVG));
      for (const r of requests.filter((request) => request.side === name)) {
        const end = r.end ?? now;
        group.append(
          element(
            "rect",
            {
              class: `bar ${r.outcome}`,
              "data-side": name,
              "data-index": r.index,
              x: x(r.start),
              y: top + 20 + r.index * rowHeight,
              width: Math.max(1, x(end) - x(r.start)),
              height: Math.max(2, rowHeight * 0.72),
              rx: Math.min(2, rowHeight / 4),
            },
            null,
            SVG,
          ),
        );
      }
      parts.push(group);
    });
    svg.replaceChildren(...parts);
  }

  function ticks(span) {
    const step = [0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20].find((s) => span / s <= 8) ?? 30;
    const marks = [];
    for (let t = 0; t <= span; t += step) marks.push(t);
    return marks;
  }

  // --- A run.

  function target(name, index) {
    const path = `/${name}/delayed`;
    if (!spread) return { url: path.slice(1), mode: "same-origin" };
    const port = location.port ? `:${location.port}` : "";
    return { url: `${location.protocol}//${name}-${index}.localhost${port}${path}`, mode: "no-cors" };
  }

  function fire(request, delay, abandon, t0) {
    const { url, mode } = target(request.side, request.index);
    const controller = new AbortController();
    if (abandon) setTimeout(() => controller.abort(), delay * 500);
    request.start = (performance.now() - t0) / 1000;
    return fetch(`${url}?delay=${delay}`, { mode, cache: "no-store", signal: controller.signal })
      .then(async (response) => {
        if (mode === "same-origin") await response.arrayBuffer();
        request.outcome = response.type === "opaque" || response.ok ? "done" : "error";
      })
      .catch((error) => (request.outcome = error.name === "AbortError" ? "abandoned" : "error"))
      .finally(() => (request.end = (performance.now() - t0) / 1000));
  }

  async function settle() {
    const deadline = performance.now() + SETTLE_MS;
    for (;;) {
      const snapshot = await fetchStats();
      show(snapshot);
      if (sides.every((name) => snapshot[name].in_flight === 0) || performance.now() > deadline) return;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS / 2));
    }
  }

  // Opens (or revives) the connection of every request of the run with an unmeasured ?delay=0
  // request, so that the browser's own start-up costs (resolving names, connecting) do not land
  // on whichever requests it happens to send last. `warmup` keeps them out of /stats.
  function warmUp(n) {
    return Promise.all(
      sides.flatMap((side) =>
        Array.from({ length: n }, (_, index) => {
          const { url, mode } = target(side, index);
          return fetch(`${url}?delay=0&warmup=1`, { mode, cache: "no-store" }).catch(() => {});
        }),
      ),
    );
  }

  async function run(n, delay, abandonHalf) {
    await warmUp(n);
    // Warm-ups are left out of /stats (`warmup`); wait until nothing of an earlier run is in flight.
    await settle();
    baseline = await fetchStats("POST");
    show(baseline);
    // Interleaved (twisted 0, asgi 0, wsgi 0, twisted 1, ...), so no side is always sent last.
    const requests = Array.from({ length: n }, (_, index) =>
      sides.map((side) => ({ side, index, start: 0, end: null, outcome: "pending" })),
    ).flat();
    const t0 = performance.now();
    const all = Promise.all(requests.map((r) => fire(r, delay, abandonHalf && r.index % 2 === 1, t0)));
    let running = true;
    const frame = () => {
      drawFrame(requests, n, delay, (performance.now() - t0) / 1000);
      if (running) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    await all;
    running = false;
    drawFrame(requests, n, delay, (performance.now() - t0) / 1000);
    await settle();
    for (const name of sides) {
      const mine = requests.filter((r) => r.side === name);
      const done = mine.filter((r) => r.outcome === "done");
      const last = Math.max(...mine.map((r) => r.end));
      const aborted = mine.length - done.length;
      const text = `${done.length} answered, the last at ${last.toFixed(2)} s` + (aborted ? `; ${aborted} aborted or failed` : "");
      countersBox.querySelector(`[data-side="${name}"] .result`).textContent = text;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const n = Math.min(100, Math.max(1, Math.round(Number(form.elements.n.value) || 1)));
    const delay = Math.min(10, Math.max(0.1, Number(form.elements.delay.value) || 1));
    const abandonHalf = event.submitter?.value === "abandon";
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    panel.dataset.state = "running";
    statusLine.textContent = `${n} requests per side, ${delay} s each${abandonHalf ? ", every other one aborted halfway" : ""}…`;
    try {
      if (!sides.length) show(await fetchStats());
      await run(n, delay, abandonHalf);
      runs += 1;
      panel.dataset.runs = String(runs);
      statusLine.textContent = `Run ${runs} done: ${n} requests per side, ${delay} s each${abandonHalf ? ", half of them aborted by this page" : ""}.`;
    } catch (error) {
      statusLine.textContent = `The run failed: ${error.message}`;
    } finally {
      panel.dataset.state = "done";
      buttons.forEach((b) => (b.disabled = false));
    }
  });

  function element(tag, attributes = {}, content = null, namespace = null) {
    const node = namespace ? document.createElementNS(namespace, tag) : document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (content !== null) node.append(content);
    return node;
  }

  function legend() {
    const swatch = (text, colour, opacity = 1) => {
      const item = element("span", {}, text);
      item.style.setProperty("--swatch", colour);
      item.style.setProperty("--swatch-opacity", opacity);
      return item;
    };
    const box = element("div", { class: "legend" });
    box.append(
      swatch("one bar per request, from send to response", "var(--side-0)"),
      swatch("still waiting", "var(--side-0)", 0.45),
      swatch("aborted by this page", "var(--abandoned)"),
      swatch("failed", "var(--error)"),
      swatch("the delay (dashed line)", "#6b7280"),
    );
    svg.after(box);
  }

  if (!spread) {
    const note = element(
      "p",
      { class: "note" },
      "Browsers open at most 6 connections per host: beyond 6 per side, requests wait in the browser, not in the server.",
    );
    form.after(note);
  }
  legend();
  listen();
})();
