import { createHash } from 'node:crypto';

// The status page: one self-contained document (no build step, no CDN, nothing fetched but the
// admin API of the origin it came from). It asks for the admin token once, keeps it in
// sessionStorage only, reads GET /api/routes and each route's history, then follows
// GET /api/events?stats=true (with the token in a header, which EventSource cannot send, so
// the stream is read with fetch).

const STYLE = `
:root { color-scheme: light dark; --stable: #2b6cb0; --candidate: #dd6b20; --bad: #c53030; --muted: #718096; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; padding: 16px 24px; }
header { display: flex; align-items: baseline; gap: 16px; }
h1 { font-size: 20px; margin: 0 0 12px; }
#conn { color: var(--muted); }
#conn.live { color: #2f855a; }
#conn.down { color: var(--bad); }
#login { max-width: 420px; padding: 16px; border: 1px solid var(--muted); border-radius: 6px; }
#login input { width: 100%; padding: 6px; margin: 6px 0; font: inherit; }
#login-error { color: var(--bad); min-height: 1.4em; margin: 4px 0 0; }
.route { border: 1px solid #cbd5e0; border-radius: 6px; padding: 12px 16px; margin: 0 0 16px; }
.route h2 { font-size: 17px; margin: 0; display: inline; }
.phase { display: inline-block; padding: 1px 8px; border-radius: 10px; margin-left: 10px; background: #e2e8f0; color: #1a202c; }
.phase.rolled_back { background: var(--bad); color: #fff; }
.phase.progressing, .phase.shadowing { background: #feebc8; }
.facts { margin: 6px 0; color: var(--muted); }
.facts b { color: inherit; }
.answers { margin: 6px 0; color: var(--muted); }
.answers b { color: inherit; }
.decision { margin: 6px 0; }
.decision.trip { color: var(--bad); }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; }
figcaption { font-size: 12px; color: var(--muted); }
svg.chart { width: 320px; height: 90px; border-left: 1px solid #a0aec0; border-bottom: 1px solid #a0aec0; }
table.window { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
table.window td, table.window th { padding: 2px 10px 2px 0; text-align: right; }
table.window th:first-child, table.window td:first-child { text-align: left; }
.legend-stable { color: var(--stable); }
.legend-candidate { color: var(--candidate); }
#events { list-style: none; padding: 0; font-variant-numeric: tabular-nums; }
#events li { padding: 2px 0; }
#events li.rollback { color: var(--bad); }
button.link { background: none; border: none; color: var(--muted); text-decoration: underline; cursor: pointer; }
[hidden] { display: none !important; }
`;

const SCRIPT = `
'use strict';
var TOKEN_KEY = 'rollgate.adminToken';
// The page is served at the admin plane's root, which a host Fastify app may mount under a prefix.
var BASE = location.pathname.replace(/\\/+$/, '');
var SPAN_MS = 5 * 60 * 1000;
var METRICS = [
  { key: 'rate', title: 'requests/s', fmt: function (v) { return v.toFixed(1); } },
  { key: 'failureRate', title: 'failure rate', fmt: function (v) { return (v * 100).toFixed(1) + '%'; } },
  { key: 'p99Ms', title: 'p99 latency (ms)', fmt: function (v) { return v.toFixed(1); } }
];
// The failure kinds each check of the answers counts (SPEC §9).
var KINDS_OF_CHECK = { json: ['invalid'], llm: ['truncated', 'empty', 'stream_error'] };
var CHECK_FAILURE_KINDS = ['invalid', 'truncated', 'empty', 'stream_error'];
var routes = new Map();
var abort = null;

function $(id) { return document.getElementById(id); }
function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function svgEl(tag, attrs) {
  var e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (var k in attrs) e.setAttribute(k, String(attrs[k]));
  return e;
}
function token() { return sessionStorage.getItem(TOKEN_KEY); }
function setConn(text, cls) { var c = $('conn'); c.textContent = text; c.className = cls || ''; }
function pct(v) { return v === null || v === undefined ? '-' : (v * 100).toFixed(2) + '%'; }
function ms(v) { return v === null || v === undefined ? '-' : v.toFixed(1) + ' ms'; }
function clock(iso) { return new Date(iso).toLocaleTimeString(); }
function limit(v) { return Number((v * 100).toFixed(2)) + '%'; }

// The check failure kinds shown for a route: those of the checks it runs, and any other counted.
function shownKinds(a, windows) {
  var run = {};
  a.checks.forEach(function (c) { (KINDS_OF_CHECK[c] || []).forEach(function (k) { run[k] = true; }); });
  return CHECK_FAILURE_KINDS.filter(function (k) {
    return run[k] || windows.some(function (w) { return w && w.failuresByKind && w.failuresByKind[k] > 0; });
  });
}

// The line of a route's answers: its checks, what its latency measures, and the agreement so far.
function renderAnswers(r, a) {
  r.answers.replaceChildren();
  r.answers.hidden = !a;
  if (!a) return;
  var checks = el('span', 'checks');
  checks.append('checks ', el('b', '', a.checks.length ? a.checks.join(', ') : 'none'));
  if (a.latency === 'ttft') checks.append(' (latency is time to first token)');
  r.answers.append(checks);
  var g = a.agreement;
  if (!g) return;
  var agreement = el('span', 'agreement');
  agreement.append(' \u00b7 agreement ', el('b', '', g.disagreements + ' of ' + g.pairs + ' pairs disagreed'),
    ' (' + (g.pairs > 0 ? pct(g.disagreements / g.pairs) : '-') + ') vs max ' + limit(g.maxDisagreement) + ' at ' + g.pointer);
  r.answers.append(agreement);
}

function askToken(message) {
  if (abort) abort.abort();
  $('login').hidden = false;
  $('main').hidden = true;
  $('login-error').textContent = message || '';
  setConn('not connected', 'down');
  $('token').focus();
}

async function api(path) {
  var res = await fetch(BASE + path, { headers: { authorization: 'Bearer ' + token() }, cache: 'no-store' });
  if (res.status === 401) throw Object.assign(new Error('token refused'), { unauthorized: true });
  if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
  return res.json();
}

function routeView(name) {
  var r = routes.get(name);
  if (r) return r;
  var section = el('section', 'route');
  section.dataset.route = name;
  var head = el('div');
  head.append(el('h2', '', name), el('span', 'phase'));
  var facts = el('div', 'facts');
  var answers = el('div', 'answers');
  answers.hidden = true;
  var decision = el('div', 'decision');
  var table = el('table', 'window');
  var charts = el('div', 'charts');
  var svgs = {};
  METRICS.forEach(function (m) {
    var fig = el('figure');
    var svg = svgEl('svg', { class: 'chart', viewBox: '0 0 320 90', preserveAspectRatio: 'none' });
    svg.dataset.metric = m.key;
    var cap = el('figcaption', '', m.title);
    fig.append(svg, cap);
    charts.append(fig);
    svgs[m.key] = { svg: svg, cap: cap };
  });
  section.append(head, facts, answers, decision, table, charts);
  $('routes').append(section);
  r = { name: name, section: section, facts: facts, answers: answers, decision: decision, table: table, svgs: svgs, samples: [], marks: [], colors: {}, state: null };
  routes.set(name, r);
  return r;
}

function colorOf(r, version, role) {
  if (!r.colors[version]) r.colors[version] = role === 'candidate' ? '#dd6b20' : '#2b6cb0';
  return r.colors[version];
}

function renderState(state) {
  var r = routeView(state.name);
  r.state = state;
  var phase = r.section.querySelector('.phase');
  phase.textContent = state.phase;
  phase.className = 'phase ' + state.phase;
  r.section.dataset.phase = state.phase;
  colorOf(r, state.stable.version, 'stable');
  if (state.candidate) colorOf(r, state.candidate.version, 'candidate');
  r.facts.replaceChildren();
  var parts = [['stable', state.stable.version + ' (rev ' + state.stable.revision + ')']];
  if (state.candidate) parts.push(['candidate', state.candidate.version + ' (rev ' + state.candidate.revision + ')']);
  parts.push(['candidate weight', state.weight + '%']);
  parts.push(['strategy', state.strategy + (state.mirrorPercent > 0 ? ', ' + state.mirrorPercent + '% of requests copied' : '')]);
  if (state.step) parts.push(['step', (state.step.index + 1) + ' of ' + state.step.count + ' at ' + state.step.weight + '%']);
  if (state.bake) parts.push([state.bake.stage + ' bake', Math.round(state.bake.remainingMs / 1000) + ' s left' + (state.bake.endsAt ? '' : ' (paused)')]);
  if (state.candidate && !state.candidate.healthy && state.phase !== 'rolled_back') parts.push(['health', 'candidate not healthy yet']);
  if (!state.stable.healthy) parts.push(['health', 'stable failing its checks']);
  if (state.data && state.data.snapshot) parts.push(['data', state.data.snapshot]);
  var restore = state.data && state.data.restore;
  if (restore) parts.push(['data restore', restore.state + ' after ' + restore.attempts + (restore.attempts === 1 ? ' attempt' : ' attempts') + (restore.lastError ? ' (' + restore.lastError + ')' : '')]);
  parts.forEach(function (p, i) {
    var span = el('span');
    span.append(p[0] + ' ');
    var b = el('b', p[0] === 'candidate weight' ? 'weight' : '', p[1]);
    span.append(b);
    if (i < parts.length - 1) span.append(' \\u00b7 ');
    r.facts.append(span);
  });
  var d = state.lastDecision;
  r.decision.textContent = d ? clock(d.at) + ' ' + d.reason + ': ' + (d.message || '') : '';
  r.decision.className = 'decision' + (d && d.reason !== 'manual' && d.reason !== 'config' ? ' trip' : '');
  var a = state.answers || null;
  renderAnswers(r, a);
  r.table.replaceChildren();
  var kinds = a ? shownKinds(a, [state.windows.stable, state.candidate ? state.windows.candidate : null]) : [];
  var lat = a && a.latency === 'ttft' ? 'ttft ' : '';
  var heads = ['window (judge)', 'requests', 'failure rate'].concat(kinds, [lat + 'p50', lat + 'p99'], a && a.tpotMs ? ['tpot p50'] : []);
  var head = el('tr');
  heads.forEach(function (h) { head.append(el('th', '', h)); });
  r.table.append(head);
  [['stable', state.stable, state.windows.stable], ['candidate', state.candidate, state.windows.candidate]].forEach(function (row) {
    if (!row[1]) return;
    var role = row[0];
    var w = row[2];
    var cells = [w ? String(w.count) : '0', w ? pct(w.failureRate) : '-'];
    kinds.forEach(function (k) { cells.push(w ? String(w.failuresByKind[k] || 0) : '-'); });
    cells.push(w ? ms(w.latencyMs['0.5']) : '-', w ? ms(w.latencyMs['0.99']) : '-');
    if (a && a.tpotMs) cells.push(ms(a.tpotMs[role] && a.tpotMs[role]['0.5']));
    var tr = el('tr');
    tr.append(el('td', 'legend-' + role, role + ' ' + row[1].version));
    cells.forEach(function (c, i) {
      var td = el('td', '', c);
      td.dataset.col = heads[i + 1];
      tr.append(td);
    });
    r.table.append(tr);
  });
}

function addMark(name, at, label) {
  var r = routeView(name);
  var t = Date.parse(at);
  if (r.marks.some(function (m) { return m.t === t; })) return;
  r.marks.push({ t: t, label: label });
  drawCharts(r);
}

function drawCharts(r) {
  var now = Date.now();
  r.samples = r.samples.filter(function (s) { return s.t >= now - SPAN_MS; });
  // The charts span what the page has seen, from 30 s up to SPAN_MS.
  var first = r.samples.length ? r.samples[0].t : now;
  r.marks.forEach(function (m) { if (m.t < first && m.t >= now - SPAN_MS) first = m.t; });
  var span = Math.min(SPAN_MS, Math.max(30000, now - first + 1000));
  var from = now - span;
  METRICS.forEach(function (m) {
    var svg = r.svgs[m.key].svg;
    svg.replaceChildren();
    var versions = {};
    var max = 0;
    r.samples.forEach(function (s) {
      for (var v in s.live) {
        var x = s.live[v][m.key];
        if (x !== null && x !== undefined) { versions[v] = true; if (x > max) max = x; }
      }
    });
    if (m.key === 'failureRate') max = Math.max(max, 0.05);
    if (max <= 0) max = 1;
    max *= 1.1;
    var latest = [];
    Object.keys(versions).forEach(function (v) {
      var pts = [];
      r.samples.forEach(function (s) {
        var f = s.live[v];
        if (!f || f[m.key] === null || f[m.key] === undefined) return;
        pts.push(((s.t - from) / span * 320).toFixed(1) + ',' + (90 - f[m.key] / max * 88).toFixed(1));
      });
      var line = svgEl('polyline', { points: pts.join(' '), fill: 'none', stroke: colorOf(r, v, 'stable'), 'stroke-width': 1.5 });
      line.dataset.version = v;
      line.dataset.points = String(pts.length);
      svg.append(line);
      var last = r.samples[r.samples.length - 1];
      if (last && last.live[v] && last.live[v][m.key] !== null && last.live[v][m.key] !== undefined) latest.push(v + ' ' + m.fmt(last.live[v][m.key]));
    });
    r.marks.forEach(function (mark) {
      if (mark.t < from) return;
      var x = ((mark.t - from) / span * 320).toFixed(1);
      var g = svgEl('g', { class: 'rollback-mark' });
      g.append(svgEl('line', { x1: x, x2: x, y1: 0, y2: 90, stroke: '#c53030', 'stroke-width': 1.5, 'stroke-dasharray': '4 2' }));
      var text = svgEl('text', { x: Math.max(0, x - 4), y: 10, 'text-anchor': 'end', 'font-size': 9, fill: '#c53030' });
      text.textContent = mark.label;
      g.append(text);
      svg.append(g);
    });
    var top = svgEl('text', { x: 3, y: 10, 'font-size': 9, fill: '#718096' });
    top.textContent = m.fmt(max);
    svg.append(top);
    var age = svgEl('text', { x: 3, y: 87, 'font-size': 9, fill: '#718096' });
    age.textContent = '-' + Math.round(span / 1000) + ' s';
    svg.append(age);
    r.svgs[m.key].cap.textContent = m.title + (latest.length ? ': ' + latest.join(', ') : '');
  });
}

function logEvent(e) {
  var li = el('li', e.type, clock(e.at) + '  ' + e.route + '  ' + e.type + ' (' + e.cause + ')  ' + e.message);
  li.dataset.type = e.type;
  li.dataset.cause = e.cause;
  $('events').prepend(li);
  while ($('events').children.length > 200) $('events').lastElementChild.remove();
}

function onEvent(type, data) {
  if (type === 'stats') {
    data.routes.forEach(function (s) {
      renderState(s);
      var r = routeView(s.name);
      if (data.intervalSeconds > 0) {
        var live = {};
        [s.stable, s.candidate].forEach(function (v) {
          if (v) live[v.version] = s.live[v.version] || { rate: 0, failureRate: null, p99Ms: null };
        });
        r.samples.push({ t: Date.parse(data.at), live: live });
      }
      drawCharts(r);
    });
    return;
  }
  if (!data.event) return;
  renderState(data.state);
  logEvent(data.event);
  if (data.event.type === 'rollback') addMark(data.event.route, data.event.at, 'rollback (' + data.event.cause + ')');
}

async function follow() {
  abort = new AbortController();
  var res = await fetch(BASE + '/api/events?stats=true', { headers: { authorization: 'Bearer ' + token() }, signal: abort.signal, cache: 'no-store' });
  if (res.status === 401) throw Object.assign(new Error('token refused'), { unauthorized: true });
  if (!res.ok || !res.body) throw new Error('/api/events: HTTP ' + res.status);
  setConn('live', 'live');
  var reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  var buf = '';
  for (;;) {
    var chunk = await reader.read();
    if (chunk.done) break;
    buf += chunk.value;
    var i;
    while ((i = buf.indexOf('\\n\\n')) >= 0) {
      var block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      var type = 'message';
      var data = [];
      block.split('\\n').forEach(function (line) {
        if (line.startsWith('event:')) type = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      });
      if (data.length) onEvent(type, JSON.parse(data.join('\\n')));
    }
  }
}

async function start() {
  $('login').hidden = true;
  $('main').hidden = false;
  setConn('connecting', '');
  try {
    var list = await api('/api/routes');
    list.routes.forEach(renderState);
    for (var i = 0; i < list.routes.length; i++) {
      var name = list.routes[i].name;
      var h = await api('/api/routes/' + encodeURIComponent(name) + '/history');
      h.events.slice(0, 20).reverse().forEach(function (e) {
        logEvent(e);
        if (e.type === 'rollback') addMark(e.route, e.at, 'rollback (' + e.cause + ')');
      });
    }
    await follow();
    setConn('stream ended; reconnecting', 'down');
  } catch (err) {
    if (err && err.unauthorized) {
      sessionStorage.removeItem(TOKEN_KEY);
      askToken('The gateway refused that token.');
      return;
    }
    if (err && err.name === 'AbortError') return;
    setConn('disconnected (' + (err && err.message) + '); reconnecting', 'down');
  }
  setTimeout(function () { if (token()) start(); }, 2000);
}

$('login').addEventListener('submit', function (ev) {
  ev.preventDefault();
  var t = $('token').value.trim();
  if (!t) { $('login-error').textContent = 'Enter the admin token.'; return; }
  sessionStorage.setItem(TOKEN_KEY, t);
  $('token').value = '';
  start();
});
$('forget').addEventListener('click', function () {
  sessionStorage.removeItem(TOKEN_KEY);
  routes.clear();
  $('routes').replaceChildren();
  $('events').replaceChildren();
  askToken('');
});
if (token()) start(); else askToken('');
`;

const hash = (s: string): string => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rollgate status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><h1>rollgate</h1><span id="conn">not connected</span></header>
<form id="login" hidden>
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="off" spellcheck="false">
<button type="submit">Open</button>
<p id="login-error"></p>
<p class="facts">The token stays in this browser tab's session storage only.</p>
</form>
<div id="main" hidden>
<div id="routes"></div>
<h2>Events</h2>
<ul id="events"></ul>
<button id="forget" class="link" type="button">forget the token</button>
</div>
<script>${SCRIPT}</script>
</body>
</html>
`;

/** Only the page's own inline style and script, and requests to its own origin. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
