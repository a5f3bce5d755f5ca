// The node's live dashboard: polls the public /v1 views once a second (and the relay
// queue with the operator token, if one was entered) and fills the page. Every value
// goes in through textContent: nothing from the network is ever parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const tokenInput = $("token");
tokenInput.value = sessionStorage.getItem("distpos-token") || "";
tokenInput.addEventListener("change", () => sessionStorage.setItem("distpos-token", tokenInput.value));

async function get(path, token) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const r = await fetch(path, { headers, cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function fill(tbody, rows, build) {
  const fresh = document.createDocumentFragment();
  for (const row of rows) {
    const tr = document.createElement("tr");
    build(tr, row);
    fresh.appendChild(tr);
  }
  tbody.replaceChildren(fresh);
}

const short = (h) => (h && h.length > 14 ? h.slice(0, 8) + "…" + h.slice(-4) : h);
const statusClass = (s) => ({ ok: "ok", low: "warn", stalled: "bad", exhausted: "bad", suspended: "warn" }[s] || "");
const ago = (ms) => (ms < 1000 ? ms + " ms" : ms < 60000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms / 60000) + " min");

function verdict(status) {
  const interval = status.block_interval_ms || 1000;
  const lag = status.head.height - status.lib.height;
  if (status.participation.percent < 33) return ["stalled", "bad"];
  if (lag > 10 * Math.max(1, status.schedule.producers.length)) return ["syncing", "warn"];
  return [interval ? "producing" : "ok", "ok"];
}

async function refresh() {
  try {
    const [status, producers, peers, recent] = await Promise.all([
      get("/v1/status"), get("/v1/producers"), get("/v1/correspondents"), get("/v1/transfers/recent"),
    ]);
    $("chain").textContent = status.chain_id;
    $("head").textContent = status.head.height;
    $("lib").textContent = status.lib.height;
    $("participation").textContent = status.participation.percent + "%";
    $("mempool").textContent = status.mempool_txs;
    const [v, cls] = verdict(status);
    $("verdict").textContent = v;
    $("verdict").className = cls;
    $("updated").textContent = new Date().toLocaleTimeString();
    fill($("producers"), producers.producers, (tr, p) => {
      cell(tr, short(p.account), "mono");
      cell(tr, p.active ? "yes" : "no", p.active ? "ok" : "");
      cell(tr, p.produced);
      cell(tr, p.missed, p.missed > 0 ? "warn" : "");
    });
    fill($("peers"), peers.correspondents, (tr, c) => {
      tr.dataset.chain = c.chain;
      cell(tr, c.chain, "mono");
      const st = cell(tr, c.status, statusClass(c.status));
      if (c.light_client.stalled) st.title = c.light_client.stalled.reason;
      cell(tr, c.available);
      const td = document.createElement("td");
      const bar = document.createElement("div");
      bar.className = "bar";
      const fillBar = document.createElement("i");
      const avail = Number(c.available), dep = Math.max(Number(c.deposited), avail, 1);
      fillBar.style.width = Math.max(0, Math.min(100, (100 * avail) / dep)) + "%";
      bar.appendChild(fillBar);
      td.appendChild(bar);
      tr.appendChild(td);
      cell(tr, c.sent_out - c.acked_out - c.refunded_out);
      const age = c.light_client.head_age_ms;
      cell(tr, c.light_client.head + (age === null ? "" : " (" + ago(age) + " ago)"));
    });
    fill($("transfers"), recent.transfers.slice(0, 30), (tr, t) => {
      cell(tr, t.height);
      cell(tr, t.kind, { delivered: "ok", acknowledged: "ok", bounced: "bad", refunded: "warn" }[t.kind] || "");
      cell(tr, t.peer, "mono");
      cell(tr, t.amount);
      cell(tr, short(t.tx), "mono");
      cell(tr, t.reason);
    });
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = "node not reachable: " + e.message;
  }
  const token = tokenInput.value;
  if (token) {
    try {
      const q = await get("/v1/relay/queue?limit=50", token);
      $("queue-note").hidden = true;
      fill($("queue"), q.items || [], (tr, it) => {
        cell(tr, short(it.id), "mono");
        cell(tr, it.destination, "mono");
        cell(tr, it.state);
        cell(tr, it.attempts);
        cell(tr, it.last_error);
      });
    } catch (e) {
      $("queue-note").hidden = false;
    }
  }
}

refresh();
setInterval(refresh, 1000);
