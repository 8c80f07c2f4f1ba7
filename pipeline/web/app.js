/*
 * gameday scoreboard: one match, pushed to the browser over Server-Sent Events.
 *
 * - Text from the feed is data, never markup: the page is built with
 *   createElement and textContent only.
 * - Every state carries the whole match. The highest seq applied wins; a frame
 *   with a seq at or below it (a replay after a reconnect, a poll) is ignored.
 * - When the stream fails, the page polls the snapshot every poll_s seconds and
 *   retries the stream; it stops polling as soon as the stream is open again.
 *   SSE comments (the edge's heartbeats) are invisible to EventSource, so after
 *   stale_s seconds without a frame the page checks the snapshot: a newer seq
 *   there means the stream went quiet while the match did not.
 * - The service worker (/sw.js) keeps the app shell and the last state of each
 *   match, so an offline reload shows the last known score, marked offline.
 *
 * URL: /matches/ID or /?match=ID; optional ?poll_s=N (default 15) and
 * ?stale_s=N (default 45). window.gameday exposes delivery timing for tests
 * and client telemetry.
 */
"use strict";

(() => {
  const MATCH_ID = /^[a-z0-9]{2,8}-[a-z0-9]{2,8}(?:-[a-z0-9]{1,16})?$/;
  const RECEIPTS_MAX = 500;
  const FIRST_POLL_MAX_MS = 2500;
  const STATUS_TEXT = { half_time: "Half time", full_time: "Full time" };

  const params = new URLSearchParams(window.location.search);
  const matchId = readMatchId();
  const pollMs = seconds(params.get("poll_s"), 15) * 1000;
  const staleMs = seconds(params.get("stale_s"), 45) * 1000;
  const snapshotUrl = matchId ? `/v1/matches/${encodeURIComponent(matchId)}` : null;

  const gameday = {
    matchId,
    lastSeq: null,
    lastUpdateAt: null,
    receipts: [],
    ignored: 0,
    snapshotFetches: 0,
    connection: "connecting",
    state: null,
  };
  window.gameday = gameday;

  const view = {};
  let state = null;
  let feedInfo = { feed: "primary", delayed: false };
  let fromCache = false;
  let notFound = false;
  let source = null;
  let polling = false;
  let pollTimer = null;
  let watchdog = null;
  let worker = null;

  // ---- input ---------------------------------------------------------------

  function readMatchId() {
    const path = /^\/matches\/([^/]+)\/?$/.exec(window.location.pathname);
    let id = params.get("match");
    if (path) {
      try {
        id = decodeURIComponent(path[1]);
      } catch {
        id = null;
      }
    }
    return typeof id === "string" && MATCH_ID.test(id) ? id : null;
  }

  function seconds(text, fallback) {
    const value = Number(text);
    return text !== null && Number.isFinite(value) && value > 0 ? value : fallback;
  }

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  }

  function isState(value) {
    return (
      value !== null &&
      typeof value === "object" &&
      value.match_id === matchId &&
      Number.isSafeInteger(value.seq) &&
      value.seq >= 0
    );
  }

  // ---- applying states -------------------------------------------------------

  /** Apply a state if it is newer than what is shown. `via`: stream, poll, cache. */
  function apply(next, via) {
    if (!isState(next)) return false;
    if (gameday.lastSeq !== null && next.seq <= gameday.lastSeq) {
      gameday.ignored += 1;
      return false;
    }
    const now = Date.now();
    state = next;
    notFound = false;
    gameday.state = next;
    gameday.lastSeq = next.seq;
    gameday.lastUpdateAt = now;
    gameday.receipts.push({ seq: next.seq, received_at_ms: now, via });
    if (gameday.receipts.length > RECEIPTS_MAX) gameday.receipts.shift();
    if (via !== "cache") noteReceipt(next, now);
    if (typeof next.delayed === "boolean") setFeed(next);
    render();
    if (via !== "cache") remember();
    return true;
  }

  function applyFeed(info) {
    if (info === null || typeof info !== "object" || typeof info.delayed !== "boolean") return;
    setFeed(info);
    renderMarks();
    remember();
  }

  function setFeed(info) {
    feedInfo = { feed: info.feed === "fallback" ? "fallback" : "primary", delayed: info.delayed };
  }

  // ---- rendering (textContent only) -----------------------------------------

  function bindView() {
    for (const node of document.querySelectorAll("[data-testid]")) {
      view[node.dataset.testid] = node;
    }
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function teams() {
    const [home, away] = matchId ? matchId.toUpperCase().split("-") : ["–", "–"];
    if (!state) return [home, away];
    return [String(state.home ?? home), String(state.away ?? away)];
  }

  function goalsOf(team) {
    if (!state) return null;
    const score = state.score && state.score[team];
    if (Number.isSafeInteger(score)) return score;
    return Array.isArray(state.goals) ? state.goals.filter((g) => g && g.team === team).length : 0;
  }

  function minuteText(minute) {
    return Number.isSafeInteger(minute) ? `${minute}'` : "";
  }

  function kickoffText(iso) {
    if (typeof iso !== "string") return null;
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return null;
    const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
    const today = new Date();
    const sameDay =
      when.getFullYear() === today.getFullYear() &&
      when.getMonth() === today.getMonth() &&
      when.getDate() === today.getDate();
    if (sameDay) return time.format(when);
    const day = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });
    return `${day.format(when)}, ${time.format(when)}`;
  }

  function statusText() {
    if (!matchId) return "No match selected";
    // A known match with no state yet has a working stream but a 404 snapshot.
    if (!state) return notFound && gameday.connection !== "live" ? "Match not found" : "Waiting for the match…";
    if (state.status === "live") return `Live ${minuteText(state.minute)}`.trim();
    if (STATUS_TEXT[state.status]) return STATUS_TEXT[state.status];
    const at = kickoffText(state.kickoff_at);
    return at ? `Kick-off ${at}` : "Scheduled";
  }

  function render() {
    const [home, away] = teams();
    const homeGoals = goalsOf(home);
    const awayGoals = goalsOf(away);
    const scoreText = state ? `${homeGoals}–${awayGoals}` : "";
    const previous = view.score.dataset.value;
    const changed = Boolean(previous) && previous !== scoreText;

    view.home.textContent = home;
    view.away.textContent = away;
    view["score-home"].textContent = state ? String(homeGoals) : "–";
    view["score-away"].textContent = state ? String(awayGoals) : "–";
    view.score.dataset.value = scoreText;
    if (changed) bump(view.score);

    const status = statusText();
    view.status.textContent = status;
    const kickoff = state && state.status !== "scheduled" ? kickoffText(state.kickoff_at) : null;
    view.kickoff.hidden = kickoff === null;
    view.kickoff.textContent = kickoff === null ? "" : `Kick-off ${kickoff}`;

    renderGoals(home, away);
    renderMarks();

    const body = document.body.dataset;
    body.seq = state ? String(state.seq) : "";
    body.status = state ? String(state.status) : notFound ? "not_found" : "unknown";
    document.title = state ? `${home} ${homeGoals}–${awayGoals} ${away} · ${status}` : "Live score";
  }

  function renderGoals(home, away) {
    const goals = state && Array.isArray(state.goals) ? state.goals : [];
    const items = goals.filter((g) => g && typeof g === "object").map((g) => goalItem(g, home, away));
    view["goal-list"].replaceChildren(...items);
    view["goals-empty"].hidden = items.length > 0;
  }

  function goalItem(goal, home, away) {
    const side = goal.team === away && goal.team !== home ? "away" : "home";
    const item = el("li", `goal goal-${side}`);
    item.dataset.testid = "goal";
    item.dataset.team = String(goal.team);
    item.append(
      el("span", "goal-minute", minuteText(goal.minute)),
      el("span", "goal-team", goal.team),
      el("span", "goal-player", goal.player ?? "Goal"),
    );
    if (goal.under_review) item.append(el("span", "goal-flag goal-flag-review", "Under review"));
    else if (goal.provisional) item.append(el("span", "goal-flag", "Provisional"));
    return item;
  }

  function renderMarks() {
    const provisional = Boolean(state && (state.provisional || anyGoal("provisional")));
    const review = Boolean(state && (state.under_review || anyGoal("under_review")));
    const offline = !navigator.onLine || fromCache;
    view["provisional-pulse"].hidden = !provisional;
    view["review-banner"].hidden = !review;
    view["delayed-badge"].hidden = !feedInfo.delayed;
    view["offline-mark"].hidden = !offline;
    view.reconnecting.hidden = offline || gameday.connection !== "reconnecting";

    const body = document.body.dataset;
    body.provisional = String(provisional);
    body.underReview = String(review);
    body.delayed = String(feedInfo.delayed);
    body.feed = feedInfo.feed;
    body.offline = String(offline);
    body.conn = gameday.connection;
  }

  function anyGoal(flag) {
    return Array.isArray(state.goals) && state.goals.some((g) => g && g[flag] === true);
  }

  function bump(node) {
    node.classList.remove("bump");
    void node.offsetWidth; // restart the animation
    node.classList.add("bump");
  }

  function setConnection(next) {
    if (gameday.connection === next) return;
    gameday.connection = next;
    render();
  }

  // ---- stream, polling, staleness -------------------------------------------

  function openStream() {
    closeStream();
    const query = gameday.lastSeq === null ? "" : `?last_event_id=${gameday.lastSeq}`;
    const es = new EventSource(`${snapshotUrl}/stream${query}`);
    source = es;
    es.addEventListener("open", () => source === es && streamUp());
    es.addEventListener("score", (event) => {
      if (source !== es) return;
      streamUp();
      apply(parseJson(event.data), "stream");
    });
    es.addEventListener("feed", (event) => {
      if (source !== es) return;
      streamUp();
      applyFeed(parseJson(event.data));
    });
    es.addEventListener("error", () => source === es && streamDown());
  }

  function closeStream() {
    if (source !== null) source.close();
    source = null;
  }

  function streamUp() {
    const wasCached = fromCache;
    fromCache = false;
    stopPolling();
    armWatchdog();
    setConnection("live");
    if (wasCached) renderMarks();
  }

  function streamDown() {
    clearTimeout(watchdog);
    setConnection("reconnecting");
    startPolling();
  }

  function startPolling() {
    if (polling) return;
    polling = true;
    // Spread the first poll so that fans dropped by one edge do not poll in step.
    schedulePoll(Math.min(pollMs, FIRST_POLL_MAX_MS) * (0.5 + Math.random() / 2));
  }

  function stopPolling() {
    polling = false;
    clearTimeout(pollTimer);
  }

  function schedulePoll(delayMs) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(pollTick, delayMs);
  }

  async function pollTick() {
    if (navigator.onLine) {
      await fetchSnapshot("poll");
      if (polling && (source === null || source.readyState === EventSource.CLOSED)) openStream();
    }
    if (polling) schedulePoll(pollMs * (0.9 + Math.random() / 5));
  }

  function armWatchdog() {
    clearTimeout(watchdog);
    watchdog = setTimeout(checkStale, staleMs);
  }

  async function checkStale() {
    if (source === null || source.readyState !== EventSource.OPEN) return;
    const missed = await fetchSnapshot("poll");
    if (missed) {
      closeStream();
      streamDown();
    } else if (source !== null && source.readyState === EventSource.OPEN) {
      armWatchdog();
    }
  }

  /** Fetch the snapshot and apply it; true when it was newer than what is shown. */
  async function fetchSnapshot(via) {
    gameday.snapshotFetches += 1;
    let response;
    try {
      response = await fetch(snapshotUrl, { cache: "no-cache", headers: { Accept: "application/json" } });
    } catch {
      return false;
    }
    if (response.status === 404 && state === null) {
      notFound = true;
      render();
      return false;
    }
    if (!response.ok) return false;
    const body = await response.json().catch(() => null);
    fromCache = response.headers.get("X-Gameday-Cache") === "hit";
    const applied = apply(body, fromCache ? "cache" : via);
    renderMarks();
    return applied;
  }

  async function reconcile() {
    renderMarks();
    await fetchSnapshot("poll");
    if (source === null || source.readyState !== EventSource.OPEN) openStream();
  }

  // ---- service worker --------------------------------------------------------

  function registerWorker() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.addEventListener("controllerchange", remember);
    navigator.serviceWorker
      .register("/sw.js")
      .then(() => navigator.serviceWorker.ready)
      .then((registration) => {
        worker = registration.active;
        if (worker) worker.postMessage({ type: "warm", url: window.location.pathname });
        remember();
      })
      .catch(() => {
        // No service worker (private mode, old browser): the page works, only not offline.
      });
  }

  /** Hand the service worker the state shown, so an offline reload can show it. */
  function remember() {
    const target = navigator.serviceWorker?.controller ?? worker;
    if (!target || !state) return;
    target.postMessage({ type: "state", state: { ...state, feed: feedInfo.feed, delayed: feedInfo.delayed } });
  }

  // ---- telemetry: what this fan sees, reported to the edge ---------------------

  const REPORT_MS = seconds(params.get("report_s"), 10) * 1000;
  const REPORT_RECEIPTS_MAX = 50;
  let unreported = [];

  function noteReceipt(next, now) {
    if (unreported.length >= REPORT_RECEIPTS_MAX || typeof next.occurred_at !== "string") return;
    unreported.push({
      seq: next.seq,
      received_at_ms: now,
      occurred_at: next.occurred_at,
      traceparent: typeof next.traceparent === "string" ? next.traceparent : "",
    });
  }

  /** Page load, visibility, how old the shown score is, and the receipts since last time. */
  function report() {
    if (!matchId || !navigator.onLine) return;
    const nav = performance.getEntriesByType("navigation")[0];
    const loadMs = nav && nav.loadEventEnd > 0 ? Math.round(nav.loadEventEnd) : null;
    const body = JSON.stringify({
      match_id: matchId,
      visible: document.visibilityState === "visible",
      page_load_ms: loadMs,
      last_update_age_s: gameday.lastUpdateAt === null ? null : (Date.now() - gameday.lastUpdateAt) / 1000,
      receipts: unreported,
    });
    unreported = [];
    gameday.reports = (gameday.reports || 0) + 1;
    const blob = new Blob([body], { type: "application/json" });
    if (!(navigator.sendBeacon && navigator.sendBeacon("/v1/telemetry", blob))) {
      fetch("/v1/telemetry", { method: "POST", body, keepalive: true,
        headers: { "Content-Type": "application/json" } }).catch(() => {});
    }
  }

  // ---- start -----------------------------------------------------------------

  bindView();
  render();
  window.addEventListener("offline", renderMarks);
  window.addEventListener("online", () => matchId && reconcile());
  if (matchId) {
    window.setInterval(report, REPORT_MS);
    document.addEventListener("visibilitychange", report);
    registerWorker();
    fetchSnapshot("poll");
    openStream();
  }
})();
