// council's web app: the convene form, tabs, and a run watched live from its event stream.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

// --- convene ---------------------------------------------------------------------------
const form = document.getElementById("convene");
if (form) {
  form.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    const data = new FormData(form);
    const body = { question: data.get("question"), protocol: data.get("protocol") };
    const personas = data.getAll("personas");
    if (personas.length) body.personas = personas;
    if (data.get("panel")) body.panel = data.get("panel");
    if (data.get("model")) body.model = data.get("model");
    for (const key of ["budget_tokens", "budget_seconds", "max_tokens"]) {
      if (data.get(key)) body[key] = Number(data.get(key));
    }
    const error = document.getElementById("convene-error");
    error.textContent = "starting…";
    const reply = await fetch("/api/convene", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const answer = await reply.json();
    if (!reply.ok) { error.textContent = answer.error || reply.statusText; return; }
    window.location = answer.url;
  });
}

// --- measuring a run's diversity (a POST: it takes seconds, so no GET does it) ---------------
const measureButton = document.getElementById("measure");
if (measureButton) {
  measureButton.addEventListener("click", async () => {
    const status = document.getElementById("measure-status");
    measureButton.disabled = true;
    status.textContent = "measuring…";
    const runId = encodeURIComponent(measureButton.dataset.run);
    const reply = await fetch(`/api/runs/${runId}/diversity`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
    });
    const answer = await reply.json();
    if (!reply.ok) { status.textContent = answer.error || reply.statusText; measureButton.disabled = false; return; }
    window.location = answer.url;
  });
}

// --- tabs --------------------------------------------------------------------------------
function showTab(key) {
  for (const pane of document.querySelectorAll("[data-pane]")) pane.hidden = pane.dataset.pane !== key;
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.classList.toggle("active", button.dataset.tab === key);
  }
}
const firstTab = document.querySelector("[data-tab]");
if (firstTab) {
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  showTab(firstTab.dataset.tab);
}

// --- a run, live -------------------------------------------------------------------------
const runNode = document.getElementById("run");
if (runNode) watch(runNode.dataset.run);

function watch(runId) {
  const status = document.getElementById("status");
  const stages = document.getElementById("stages");
  const verdict = document.getElementById("verdict");
  const cards = new Map();   // "stage/round/seat" -> card element
  const labels = new Map();  // seat -> anonymous label, as the other seats saw it
  const timers = new Map();
  const stageBox = (stage, round) => {
    const id = `stage-${stage}-${round}`;
    let box = document.getElementById(id);
    if (!box) {
      box = el("section", { id, class: "stage" },
        el("h3", {}, stage.replaceAll("_", " ") + (round ? ` (round ${round})` : "")));
      stages.append(box);
    }
    return box;
  };
  const seatName = (seat) => el("span", { class: "seat", "data-seat": seat,
    "data-label": labels.get(seat) || seat }, labels.get(seat) || seat);
  const reveal = document.getElementById("reveal");
  const applyReveal = () => {
    for (const span of document.querySelectorAll(".seat")) {
      span.textContent = reveal.checked ? span.dataset.seat : span.dataset.label;
    }
  };
  reveal.addEventListener("change", applyReveal);

  const on = {
    run_started(e) {
      for (const seat of e.header.seats) {
        if (seat.anonymous_label) labels.set(seat.seat, seat.anonymous_label);
      }
      document.title = `${e.header.protocol}: ${e.header.question.slice(0, 60)} · council`;
      status.textContent = `running: ${e.header.protocol} · ${e.header.seats.length} seats`;
    },
    stage_started(e) { stageBox(e.stage, e.round); },
    turn_started(e) {
      const key = `${e.stage}/${e.round}/${e.seat}`;
      const meta = el("small", { class: "meta" }, "thinking… 0 s");
      const card = el("article", { class: "turn running" }, seatName(e.seat), " ", meta,
        el("pre", { class: "content" }));
      stageBox(e.stage, e.round).append(card);
      cards.set(key, card);
      const began = Date.now();
      timers.set(key, setInterval(() => {
        meta.textContent = `thinking… ${Math.round((Date.now() - began) / 1000)} s`;
      }, 1000));
    },
    turn_finished(e) {
      const t = e.turn;
      const key = `${t.stage}/${t.round}/${t.seat}`;
      clearInterval(timers.get(key));
      let card = cards.get(key);
      if (!card) { on.turn_started({ stage: t.stage, round: t.round, seat: t.seat }); card = cards.get(key); clearInterval(timers.get(key)); }
      card.classList.remove("running");
      card.classList.toggle("failed", Boolean(t.error));
      const parts = [`${t.model}`, `${t.latency_s.toFixed(1)} s`];
      if (t.completion_tokens != null) parts.push(`${t.completion_tokens} tokens`);
      if (t.attempts > 1) parts.push(`${t.attempts} attempts`);
      if (t.reused) parts.push("reused");
      // Lengths: a reply over its word limit, cut off at its token cap, or continued once.
      if (t.over_limit) parts.push(`${t.words} words, over the limit of ${t.word_limit}`);
      if (t.continued) parts.push("cut off, continued once");
      if (t.truncated) parts.push(t.continued ? "cut off again" : "cut off at its token cap");
      card.classList.toggle("cut", Boolean(t.truncated || t.over_limit));
      card.querySelector(".meta").textContent = parts.join(" · ");
      card.querySelector(".content").textContent = t.error ? `No answer: ${t.error}` : t.content;
    },
    tally_made(e) {
      const t = e.tally;
      const scores = Object.entries(t.scores || {}).map(([option, score]) => `${option}: ${score}`);
      const outcome = t.winner ? `${t.winner}${t.consensus ? " (consensus)" : ""}`
        : (t.split ? "split: no option reached the threshold" : "no winner");
      const agreement = t.agreement != null ? ` · agreement ${(t.agreement * 100).toFixed(0)}%` : "";
      const dissent = t.dissenters.length ? ` · dissent: ${t.dissenters.join(", ")}` : "";
      stageBox(t.stage, t.round).append(el("p", { class: "tally" },
        `${t.kind} (${t.rule}): ${outcome}${agreement}${dissent} — ${scores.join(", ")}`));
    },
    seat_absent(e) {
      status.textContent += ` · ${e.seat} absent (${e.reason})`;
    },
    stage_skipped(e) {
      stageBox(e.stage, e.round).append(el("p", { class: "skipped" }, `skipped: ${e.reason}`));
    },
    run_finished(e) {
      status.textContent = `${e.status}` + (e.error ? `: ${e.error}` : "");
      verdict.textContent = e.synthesis || "No synthesis.";
      // council's check of the verdict: unchecked, it says what the verdict still lacks.
      const check = e.verdict_check;
      if (check && check.status === "unchecked") {
        verdict.before(el("p", { class: "verdict-check unchecked" },
          `Verdict unchecked (asked once more): ${check.reasons.join("; ")}`));
      }
      for (const timer of timers.values()) clearInterval(timer);
    },
  };
  // Live while a seat speaks: the pieces of its reply, and each retry or fallback.
  const card = (e) => cards.get(`${e.stage}/${e.round}/${e.seat}`);
  const note = (e, text) => {
    const found = card(e);
    if (!found) return;
    found.querySelector(".content").textContent = "";  // the next attempt streams from the start
    found.append(el("p", { class: "note" }, text));
  };
  Object.assign(on, {
    turn_delta(e) { const found = card(e); if (found) found.querySelector(".content").textContent += e.text; },
    call_retrying(e) { note(e, `attempt ${e.attempt} on ${e.model} failed (${e.error}); retrying in ${e.wait_s.toFixed(1)} s`); },
    call_fell_back(e) { note(e, `${e.failed} failed for good (${e.error}); falling back to ${e.fallback}`); },
  });
  const streamed = () => {};  // an event type this page does not show
  const source = new EventSource(`/api/runs/${encodeURIComponent(runId)}/events`);
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    (on[event.type] || streamed)(event);
    applyReveal();
  };
  source.addEventListener("end", (message) => {
    const end = JSON.parse(message.data || "{}");
    if (end.error) status.textContent = `failed: ${end.error}`;
    source.close();
    document.body.dataset.runDone = "true";
  });
}
