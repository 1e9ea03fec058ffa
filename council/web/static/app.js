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
    // The options, generated from the spec: a switch is sent as it stands, a number or a word
    // only when given (left blank, the server's cap or the council's default holds).
    for (const input of form.querySelectorAll("[data-option]")) {
      const kind = input.dataset.option;
      if (kind === "flag") body[input.name] = input.checked;
      else if (kind === "list") {
        const items = input.value.split(",").map((item) => item.trim()).filter(Boolean);
        if (items.length) body[input.name] = items;
      } else if (input.value !== "") body[input.name] = kind === "number" ? Number(input.value) : input.value;
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

// The chosen protocol's description, under its menu.
const protocolMenu = form && form.querySelector("select[name=protocol]");
if (protocolMenu) {
  protocolMenu.addEventListener("change", () => {
    document.getElementById("protocol-about").textContent =
      protocolMenu.selectedOptions[0].dataset.about || "";
  });
}

// --- a follow-up on a finished run: the same seats, a new question -------------------------
const followUp = document.getElementById("follow-up");
if (followUp) {
  followUp.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    const error = document.getElementById("follow-up-error");
    error.textContent = "starting…";
    const runId = encodeURIComponent(document.getElementById("run").dataset.run);
    const question = new FormData(followUp).get("question");
    const reply = await fetch(`/api/runs/${runId}/follow-up`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question }),
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
    const active = button.dataset.tab === key;
    button.classList.toggle("active", active);
    button.setAttribute("aria-selected", String(active));
  }
}
const firstTab = document.querySelector("[data-tab]");
if (firstTab) {
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  showTab(firstTab.dataset.tab);
}

// --- a run's tallies, drawn --------------------------------------------------------------
const number = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(2));
const percent = (x) => `${Math.round(x * 100)}%`;

// Effective votes (issue 31), once a tally carries them: a number, or {n_eff, basis}.
function effectiveVotes(t) {
  const found = t.effective_votes;
  if (found == null) return null;
  const n = typeof found === "number" ? found : (found.n_eff ?? found.value);
  if (n == null) return null;
  const basis = typeof found === "object" && found.basis ? `; basis: ${found.basis}` : "";
  const range = typeof found === "object" && found.low != null && found.high != null
    ? ` (${number(found.low)} to ${number(found.high)})` : "";
  const of = typeof found === "object" && found.n != null ? `${found.n} seats, ` : "";
  return `${of}about ${number(n)} independent votes${range}${basis}`;
}

// One bar per option (its weight of the whole), the threshold marked, then who weighed what
// and who dissented. seatName: a seat as the page shows it (anonymous until revealed).
function tallyFigure(t, title, seatName) {
  const scores = Object.entries(t.scores || {}).sort((a, b) => b[1] - a[1]);
  const whole = t.denominator || scores.reduce((sum, [, s]) => sum + s, 0) || 1;
  const scale = t.kind === "ranking" ? Math.max(1, ...scores.map(([, s]) => s)) : whole;
  const outcome = t.winner ? `${t.winner} carries${t.consensus ? " (consensus)" : ""}`
    : (t.outcome === "inconclusive" ? "inconclusive: too many ballots could not be counted"
      : (t.split ? "split: no option reached the threshold" : "no winner"));
  const figure = el("figure", { class: "tally", "data-stage": t.stage });
  figure.append(el("figcaption", {}, el("b", {}, title), ` (${t.kind}, ${t.rule.replaceAll("_", " ")}): `,
    el("span", { class: "outcome" }, outcome)));
  const bars = el("ul", { class: "bars" });
  for (const [option, score] of scores) {
    const fill = el("span", { class: "fill" });
    fill.style.width = `${Math.min(100, (100 * score) / scale)}%`;
    const track = el("span", { class: "track", "aria-hidden": "true" }, fill);
    if (t.kind === "vote" && t.threshold != null) {
      const mark = el("span", { class: "threshold" });
      mark.style.left = `${Math.min(100, t.threshold * 100)}%`;
      track.append(mark);
    }
    const of = t.kind === "vote" ? ` of ${number(whole)}` : " points";
    bars.append(el("li", { class: option === t.winner ? "bar winner" : "bar", "data-option": option },
      el("span", { class: "option" }, option), track, el("span", { class: "score" }, `${number(score)}${of}`)));
  }
  figure.append(bars);
  const facts = el("p", { class: "facts" });
  const fact = (...parts) => { if (facts.childNodes.length) facts.append(" · "); facts.append(...parts); };
  if (t.threshold != null) {
    fact(`threshold ${percent(t.threshold)}` + (t.needed != null ? ` (${number(t.needed)} of ${number(whole)})` : ""));
  }
  if (t.agreement != null) fact(`agreement ${percent(t.agreement)}`);
  const weights = Object.entries(t.weights || {});
  if (weights.length) {
    const list = el("span", { class: "weights" }, "weights: ");
    weights.forEach(([seat, weight], i) => list.append(i ? ", " : "", seatName(seat), ` ${number(weight)}`));
    fact(list);
  }
  const list = (label, seats) => {
    if (!seats || !seats.length) return;
    const span = el("span", { class: label }, `${label}: `);
    seats.forEach((seat, i) => span.append(i ? ", " : "", seatName(seat)));
    fact(span);
  };
  list("dissent", t.dissenters);
  list("not counted", t.invalid);
  list("abstained", t.abstained);
  const effective = effectiveVotes(t);
  if (effective) fact(el("span", { class: "effective" }, effective));
  if (facts.childNodes.length) figure.append(facts);
  return figure;
}

// --- a run, live -------------------------------------------------------------------------
const REVEAL_KEY = "council.reveal";  // the reveal switch, remembered between runs
const runNode = document.getElementById("run");
if (runNode) watch(runNode.dataset.run);

function remembered(key) {
  try { return window.localStorage.getItem(key); } catch (e) { return null; }
}
function remember(key, value) {
  try { window.localStorage.setItem(key, value); } catch (e) { /* storage off: not remembered */ }
}

function watch(runId) {
  const status = document.getElementById("status");
  const stages = document.getElementById("stages");
  const verdict = document.getElementById("verdict");
  const tallies = document.getElementById("tallies");
  const cards = new Map();   // "stage/round/seat" -> card element
  const labels = new Map();  // seat -> anonymous label, as the other seats saw it
  const titles = new Map();  // stage id -> its title in the protocol
  const timers = new Map();
  const title = (stage, round) => (titles.get(stage)
    || stage.charAt(0).toUpperCase() + stage.slice(1).replaceAll("_", " ").replaceAll("-", " "))
    + (round ? ` (round ${round})` : "");
  // A stage's calls made again ("verdict.reask", ".continue", ".retry") sit in its own box.
  const stageBox = (stage, round) => {
    const base = stage.split(".")[0];
    const id = `stage-${base}-${round}`;
    let box = document.getElementById(id);
    if (!box) {
      box = el("section", { id, class: "stage", "data-stage": base }, el("h3", {}, title(base, round)));
      stages.append(box);
    }
    return box;
  };
  const AGAIN = { reask: "asked again", continue: "continued", retry: "asked again with a larger cap" };
  const seatName = (seat) => el("span", { class: "seat", "data-seat": seat,
    "data-label": labels.get(seat) || seat }, labels.get(seat) || seat);
  const reveal = document.getElementById("reveal");
  reveal.checked = remembered(REVEAL_KEY) === "true";
  const applyReveal = () => {
    for (const span of document.querySelectorAll(".seat")) {
      span.textContent = reveal.checked ? span.dataset.seat : span.dataset.label;
    }
  };
  reveal.addEventListener("change", () => { remember(REVEAL_KEY, String(reveal.checked)); applyReveal(); });

  const on = {
    run_started(e) {
      for (const seat of e.header.seats) {
        if (seat.anonymous_label) labels.set(seat.seat, seat.anonymous_label);
      }
      reveal.closest("label").hidden = labels.size === 0;  // nothing to reveal
      document.title = `${e.header.protocol}: ${e.header.question.slice(0, 60)} · council`;
      status.textContent = `running: ${e.header.protocol} · ${e.header.seats.length} seats`;
    },
    stage_started(e) {
      if (e.label) titles.set(e.stage, e.label);
      stageBox(e.stage, e.round);
    },
    turn_started(e) {
      const key = `${e.stage}/${e.round}/${e.seat}`;
      const meta = el("small", { class: "meta" }, "thinking… 0 s");
      const again = AGAIN[e.stage.split(".")[1]];
      const card = el("article", { class: "turn running", "data-structured": e.structured ? "1" : "" }, seatName(e.seat), " ",
        again ? el("small", { class: "again" }, `${again} · `) : "", meta, el("pre", { class: "content" }));
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
      // A ballot asked for as JSON arrives as prose too (the server's Turn.text): shown so.
      card.querySelector(".content").textContent = t.error ? `No answer: ${t.error}` : (e.prose ?? t.content);
      // Citations of the context documents, each checked: the unsupported ones marked.
      const cited = t.citations || [];
      if (cited.length) {
        const bad = cited.filter((c) => !c.valid).length;
        const label = (c) => `[${c.doc}:${c.start === c.end ? c.start : `${c.start}-${c.end}`}]`;
        const notes = cited.map((c) => c.valid ? label(c) : `${label(c)} unsupported (${c.problem})`);
        card.append(el("p", { class: bad ? "citations unsupported" : "citations" },
          `Citations (${cited.length} cited${bad ? `, ${bad} unsupported` : ""}): ${notes.join(" · ")}`));
      }
    },
    tally_made(e) {
      const t = e.tally;
      const heading = title(t.stage, t.round);
      tallies.append(tallyFigure(t, heading, seatName));
      stageBox(t.stage, t.round).append(tallyFigure(t, heading, seatName));
    },
    seat_absent(e) {
      status.textContent += ` · ${e.seat} absent (${e.reason})`;
    },
    stage_skipped(e) {
      stageBox(e.stage, e.round).append(el("p", { class: "skipped" }, `skipped: ${e.reason}`));
    },
    run_finished(e) {
      status.textContent = `${e.status}` + (e.error ? `: ${e.error}` : "");
      verdict.textContent = e.synthesis || "No verdict.";
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
    turn_delta(e) {
      const found = card(e);
      if (!found) return;
      const content = found.querySelector(".content");
      // A ballot asked for as JSON streams JSON: counted here, shown as prose once finished.
      if (found.dataset.structured) {
        found.dataset.streamed = String(Number(found.dataset.streamed || 0) + e.text.length);
        content.textContent = `writing its ballot… ${found.dataset.streamed} characters`;
      } else content.textContent += e.text;
    },
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
