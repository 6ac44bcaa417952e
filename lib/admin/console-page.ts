/**
 * The admin console: one self-contained page (no build step, no framework, nothing fetched from
 * elsewhere) over the admin API. Every value from the API is put in the page as text, never as
 * markup. The admin key is kept in the tab's sessionStorage only. Keyboard-usable (real buttons and
 * forms, visible focus) and readable on a narrow window (tables scroll on their own). Its
 * Content-Security-Policy allows this page's own script and style (by hash) and nothing else.
 */
import { createHash } from 'node:crypto'

const STYLE = `
:root { color-scheme: light dark; --accent: #2563eb; --bad: #b91c1c; --good: #15803d; --line: #8884; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; padding: 0 1rem 2rem; max-width: 80rem; margin-inline: auto; }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline; justify-content: space-between; border-bottom: 1px solid var(--line); padding: .75rem 0; }
h1 { font-size: 1.25rem; margin: 0; }
h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; white-space: nowrap; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font-size: .85rem; max-width: 40rem; }
button { font: inherit; padding: .3rem .8rem; border-radius: .3rem; border: 1px solid var(--line); cursor: pointer; background: transparent; color: inherit; }
button.approve { border-color: var(--good); color: var(--good); }
button.deny, button.end { border-color: var(--bad); color: var(--bad); }
button:focus-visible, input:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
input { font: inherit; padding: .35rem .5rem; min-width: 16rem; max-width: 100%; }
.empty { opacity: .7; }
.ok { color: var(--good); }
.bad { color: var(--bad); }
.diff-before { color: var(--bad); }
.diff-after { color: var(--good); }
#status { min-height: 1.4em; }
form.login { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin-top: 2rem; }
`

const SCRIPT = `
const PREFIX = document.body.dataset.prefix;
const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem('mcp-admin-key') || '';
let feed;

function say (text) { $('status').textContent = text; }

async function api (path, init = {}) {
  const res = await fetch(PREFIX + '/api' + path, { ...init, headers: { authorization: 'Bearer ' + key, ...(init.body ? { 'content-type': 'application/json' } : {}) } });
  if (res.status === 401) { signOut('The admin key was not accepted.'); throw new Error('unauthorized'); }
  const body = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error(body && body.error ? body.error.message : 'HTTP ' + res.status);
  return body;
}

function el (tag, text, cls) { const node = document.createElement(tag); if (text !== undefined) node.textContent = String(text); if (cls) node.className = cls; return node; }
function button (label, cls, onClick, name) { const b = el('button', label, cls); b.type = 'button'; if (name) b.setAttribute('aria-label', name); b.addEventListener('click', onClick); return b; }
function json (value) { return el('pre', JSON.stringify(value, null, 2)); }
function ago (ms) { const s = Math.max(0, Math.round((Date.now() - ms) / 1000)); return s < 60 ? s + ' s ago' : Math.round(s / 60) + ' min ago'; }

function table (id, headings, rows, empty) {
  const box = $(id); box.replaceChildren();
  if (rows.length === 0) { box.append(el('p', empty, 'empty')); return; }
  const t = el('table'); const head = el('tr');
  for (const h of headings) { const th = el('th', h); th.scope = 'col'; head.append(th); }
  const thead = el('thead'); thead.append(head); t.append(thead);
  const body = el('tbody');
  for (const cells of rows) { const tr = el('tr'); for (const c of cells) { const td = el('td'); td.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c))); tr.append(td); } body.append(tr); }
  t.append(body); box.append(t);
}

async function decide (call, approve) {
  try { await api('/approvals/' + encodeURIComponent(call.id) + (approve ? '/approve' : '/deny'), { method: 'POST', body: '{}' }); say((approve ? 'Approved ' : 'Denied ') + call.tool + '.'); }
  catch (err) { say('Could not decide: ' + err.message); }
  refresh('approvals');
}

async function approvePin (pin) {
  try { await api('/pins/approve', { method: 'POST', body: JSON.stringify({ upstream: pin.upstream, tool: pin.tool, hash: pin.proposed.hash }) }); say('Approved the new definition of ' + pin.tool + '.'); }
  catch (err) { say('Could not approve: ' + err.message); }
  refresh('pins');
}

async function startTape (s) {
  try { await api('/tapes', { method: 'POST', body: JSON.stringify({ session: s.id }) }); say('Taping session ' + s.id + '.'); }
  catch (err) { say('Could not start a tape: ' + err.message); }
  refresh('tapes');
}

async function stopTape (tape) {
  try { await api('/tapes/' + encodeURIComponent(tape.id) + '/stop', { method: 'POST', body: '{}' }); say('Stopped tape ' + tape.id + '.'); }
  catch (err) { say('Could not stop the tape: ' + err.message); }
  refresh('tapes');
}

async function downloadTape (tape) {
  try {
    const res = await fetch(PREFIX + '/api/tapes/' + encodeURIComponent(tape.id), { headers: { authorization: 'Bearer ' + key } });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const link = el('a'); link.href = URL.createObjectURL(await res.blob()); link.download = tape.id + '.tape.jsonl';
    document.body.append(link); link.click(); link.remove(); setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (err) { say('Could not download the tape: ' + err.message); }
}

async function endSession (s) {
  try { await api('/sessions/' + encodeURIComponent(s.id), { method: 'DELETE' }); say('Ended session ' + s.id + '.'); }
  catch (err) { say('Could not end the session: ' + err.message); }
  refresh('sessions');
}

const views = {
  async approvals () {
    const { approvals } = await api('/approvals');
    table('approvals', ['Tool', 'Who', 'Upstream', 'Rule', 'Arguments', 'Waiting', 'Decide'], approvals.map((c) => {
      const actions = el('div'); actions.append(button('Approve', 'approve', () => decide(c, true), 'Approve ' + c.tool), ' ', button('Deny', 'deny', () => decide(c, false), 'Deny ' + c.tool));
      return [c.tool, c.principal || '(anonymous)', c.member ? c.upstream + ' (' + c.member.upstream + ')' : c.upstream, c.rule, json(c.arguments), ago(c.heldAt), actions];
    }), 'No call waits for approval.');
  },
  async sessions () {
    const { sessions, total } = await api('/sessions?limit=200');
    $('sessions-count').textContent = '(' + total + ')';
    table('sessions', ['Session', 'Upstream', 'Who', 'Protocol', 'Client', 'Last seen', ''], sessions.map((s) => {
      const actions = el('div'); actions.append(button('Tape', '', () => startTape(s), 'Tape session ' + s.id), ' ', button('End', 'end', () => endSession(s), 'End session ' + s.id));
      return [s.id, s.upstream, s.principal || '', s.protocolVersion, s.clientInfo ? (s.clientInfo.name || '') + ' ' + (s.clientInfo.version || '') : '', ago(s.lastSeenAt), actions];
    }), 'No open session.');
  },
  async upstreams () {
    const { upstreams } = await api('/upstreams');
    table('upstreams', ['Upstream', 'Kind', 'Health', 'Members'], upstreams.map((u) => [u.name, u.kind, el('span', u.health, u.health === 'ok' ? 'ok' : 'bad'), u.members.map((m) => m.name + ': ' + m.health).join(', ')]), 'No upstream.');
  },
  async pins () {
    const { enabled, pending } = await api('/pins');
    table('pins', ['Tool', 'Upstream', 'What', 'Changes', ''], pending.map((p) => {
      const diff = el('div');
      for (const d of p.diff) { diff.append(el('strong', d.field)); diff.append(el('pre', '- ' + JSON.stringify(d.before), 'diff-before')); diff.append(el('pre', '+ ' + JSON.stringify(d.after), 'diff-after')); }
      return [p.tool, p.upstream, p.kind === 'new' ? 'new tool' : 'changed definition', diff, button('Approve', 'approve', () => approvePin(p), 'Approve the new definition of ' + p.tool)];
    }), enabled ? 'No definition waits for approval.' : 'Tool pinning is off.');
  },
  async tapes () {
    const { enabled, tapes } = await api('/tapes');
    table('tapes', ['Tape', 'Session', 'Upstream', 'Messages', 'Size', 'State', ''], tapes.map((tape) => {
      const actions = el('div');
      if (tape.recording) actions.append(button('Stop', 'end', () => stopTape(tape), 'Stop tape ' + tape.id));
      else actions.append(button('Download', '', () => downloadTape(tape), 'Download tape ' + tape.id));
      return [tape.id, tape.session, tape.upstream, tape.entries < 0 ? '' : tape.entries, Math.round(tape.bytes / 1024) + ' KiB', el('span', tape.recording ? 'recording' : 'done', tape.recording ? 'ok' : ''), actions];
    }), enabled ? 'No tape yet.' : 'Tapes are off.');
  },
  async policy () {
    const policy = await api('/policy');
    if (!policy.enabled) { table('policy', [], [], 'No policy.'); return; }
    $('policy-version').textContent = '(version ' + policy.version + (policy.reloadFailed ? ', last reload failed' : '') + ', default ' + policy.default + ')';
    table('policy', ['Rule', 'Effect', 'When'], policy.rules.map((r) => [r.name, r.effect, el('pre', r.when)]), 'No rules.');
  }
};

async function refresh (name) {
  try { await views[name](); } catch (err) { if (err.message !== 'unauthorized') say('Could not load ' + name + ': ' + err.message); }
}

async function listen () {
  feed?.abort(); feed = new AbortController();
  try {
    const res = await fetch(PREFIX + '/api/events', { headers: { authorization: 'Bearer ' + key }, signal: feed.signal });
    if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
    $('live').textContent = 'live';
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\\n\\n')) !== -1) {
        const block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
        const type = (block.match(/^event: (.*)$/m) || [])[1];
        if (type === 'approval-held' || type === 'approval-decided') refresh('approvals');
        if (type === 'pin') refresh('pins');
        if (type === 'session-ended') refresh('sessions');
      }
    }
  } catch {}
  $('live').textContent = 'reconnecting';
  if (key) setTimeout(listen, 2000);
}

function signIn (value) {
  key = value; sessionStorage.setItem('mcp-admin-key', key);
  api('/whoami').then(({ name }) => {
    $('login').hidden = true; $('main').hidden = false; $('who').textContent = 'Signed in as ' + name; say('');
    for (const name of Object.keys(views)) refresh(name);
    listen();
    $('approvals-heading').focus();
  }, (err) => { if (err.message !== 'unauthorized') say(err.message); });
}

function signOut (text) {
  key = ''; sessionStorage.removeItem('mcp-admin-key'); feed?.abort();
  $('main').hidden = true; $('login').hidden = false; say(text || 'Signed out.'); $('key').focus();
}

$('login').addEventListener('submit', (event) => { event.preventDefault(); signIn($('key').value.trim()); });
$('signout').addEventListener('click', () => signOut());
// Other instances' sessions and held calls have no event here: looked at again every few seconds.
setInterval(() => { if (key) { refresh('approvals'); refresh('sessions'); refresh('tapes'); } }, 3000);
setInterval(() => { if (key) refresh('upstreams'); }, 15000);
if (key) signIn(key); else $('key').focus();
`

function escapeAttribute (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')
}

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`

export const CONSOLE_CSP = `default-src 'none'; script-src ${sha256(SCRIPT)}; style-src ${sha256(STYLE)}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`

export function consolePage (prefix: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MCP gateway admin</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body data-prefix="${escapeAttribute(prefix)}">
<header><h1>MCP gateway admin</h1><span id="status" role="status" aria-live="polite"></span></header>
<form id="login" class="login">
  <label for="key">Admin API key</label>
  <input id="key" name="key" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form>
<main id="main" hidden>
  <p><span id="who"></span> · feed: <span id="live">connecting</span> · <button id="signout" type="button">Sign out</button></p>
  <section aria-labelledby="approvals-heading"><h2 id="approvals-heading" tabindex="-1">Calls waiting for approval</h2><div id="approvals" class="scroll"></div></section>
  <section aria-labelledby="sessions-heading"><h2 id="sessions-heading">Sessions <span id="sessions-count"></span></h2><div id="sessions" class="scroll"></div></section>
  <section aria-labelledby="upstreams-heading"><h2 id="upstreams-heading">Upstreams</h2><div id="upstreams" class="scroll"></div></section>
  <section aria-labelledby="pins-heading"><h2 id="pins-heading">Tool definitions waiting for approval</h2><div id="pins" class="scroll"></div></section>
  <section aria-labelledby="tapes-heading"><h2 id="tapes-heading">Tapes</h2><div id="tapes" class="scroll"></div></section>
  <section aria-labelledby="policy-heading"><h2 id="policy-heading">Policy <span id="policy-version"></span></h2><div id="policy" class="scroll"></div></section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`
}
