// peernode's web page. It reads the daemon's control API with the session
// cookie the login set, refreshes every few seconds and updates its tables
// in place: a row is rebuilt only when its data changed. All text goes in
// through textContent, never as HTML: names and notes come from other nodes.
'use strict';

(() => {
  const REFRESH_MS = 3000;
  // Every state-changing request carries it: the server refuses a
  // session's POST without it, which a form posted by another site cannot
  // add.
  const CSRF_HEADER = 'X-Peernode-CSRF';

  const $ = (id) => document.getElementById(id);

  class AuthError extends Error {}
  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // call sends a request to the API and returns its decoded answer.
  async function call(method, path, body) {
    const init = { method, credentials: 'same-origin', cache: 'no-store', headers: {} };
    if (method !== 'GET') init.headers[CSRF_HEADER] = '1';
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    if (resp.status === 401) throw new AuthError('not logged in');
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      // No body (204) or not JSON.
    }
    if (!resp.ok) {
      throw new APIError(resp.status, (data && data.error) || resp.status + ' ' + resp.statusText);
    }
    return data;
  }

  // ---- formatting ----

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function setText(e, text) {
    if (e.textContent !== text) e.textContent = text;
  }

  function shortID(id) {
    return id.length > 18 ? id.slice(0, 8) + '\u2026' + id.slice(-6) : id;
  }

  function duration(s) {
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm';
    if (s < 86400) return Math.floor(s / 3600) + 'h';
    return Math.floor(s / 86400) + 'd';
  }

  // relative formats a timestamp as "5s ago" or "in 3m"; "-" when absent.
  function relative(ts) {
    const t = ts ? Date.parse(ts) : NaN;
    if (isNaN(t)) return '-';
    const s = Math.round((Date.now() - t) / 1000);
    if (s < 0) return 'in ' + duration(-s);
    if (s < 2) return 'just now';
    return duration(s) + ' ago';
  }

  function localTime(ts) {
    const t = ts ? Date.parse(ts) : NaN;
    return isNaN(t) ? '-' : new Date(t).toLocaleString();
  }

  function millis(v) {
    if (typeof v !== 'number' || !(v > 0)) return '-';
    return v < 10 ? v.toFixed(1) + ' ms' : Math.round(v) + ' ms';
  }

  function byteSize(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return i === 0 ? v + ' B' : v.toFixed(1) + ' ' + units[i];
  }

  function unit(v) {
    return typeof v === 'number' && isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
  }

  // ---- keyed tables ----

  // Table keeps one row per key in tbody. sync brings the rows to items, in
  // their order: new keys get a row (create), rows whose item changed are
  // refilled (fill), every row's clock-driven cells are updated (tick), and
  // rows already in place are not moved.
  class Table {
    constructor(tbody, spec) {
      this.tbody = tbody;
      this.rows = new Map();
      this.spec = spec;
    }

    sync(items) {
      const seen = new Set();
      let prev = null;
      for (const item of items) {
        const key = this.spec.key(item);
        if (seen.has(key)) continue;
        seen.add(key);
        let row = this.rows.get(key);
        if (!row) {
          row = this.spec.create(key);
          this.rows.set(key, row);
        }
        const sig = JSON.stringify(item);
        if (row.sig !== sig) {
          row.sig = sig;
          this.spec.fill(row, item);
        }
        if (this.spec.tick) this.spec.tick(row, item);
        const want = prev ? prev.nextSibling : this.tbody.firstChild;
        if (want !== row.tr) this.tbody.insertBefore(row.tr, want);
        prev = row.tr;
      }
      for (const [key, row] of this.rows) {
        if (!seen.has(key)) {
          row.tr.remove();
          this.rows.delete(key);
        }
      }
    }
  }

  // ---- members ----

  let filterWords = [];

  function applyFilter(row) {
    row.tr.hidden = !filterWords.every((w) => row.text.includes(w));
  }

  function countMembers() {
    let shown = 0;
    for (const row of members.rows.values()) if (!row.tr.hidden) shown++;
    const n = members.rows.size;
    setText($('members-count'), shown === n ? String(n) : shown + ' of ' + n);
    $('members-empty').hidden = n !== 0;
  }

  const members = new Table($('members-body'), {
    key: (p) => p.node_id,
    create(id) {
      const r = { tr: el('tr') };
      r.tr.dataset.node = id;
      const statusCell = el('td');
      r.status = el('span', 'status');
      statusCell.append(r.status);
      r.name = el('td', 'name');
      const idCell = el('td');
      const code = el('code', null, shortID(id));
      code.title = id;
      idCell.append(code);
      r.role = el('td');
      const scoreCell = el('td', 'score');
      const bar = el('span', 'bar');
      r.fill = el('span', 'fill');
      bar.append(r.fill);
      r.score = el('span', 'score-value');
      scoreCell.append(bar, r.score);
      r.rtt = el('td', 'num');
      r.reliability = el('td', 'num');
      r.heard = el('td');
      r.connected = el('td');
      r.tr.append(statusCell, r.name, idCell, r.role, scoreCell, r.rtt, r.reliability, r.heard, r.connected);
      return r;
    },
    fill(r, p) {
      const status = String(p.status || 'unknown');
      r.tr.dataset.status = status;
      r.status.textContent = status;
      r.status.className = 'status status-' + status.replace(/[^a-z_]/g, '');
      const f = p.last_failure;
      r.status.title = f ? 'last failure: ' + f.reason + (f.message ? ': ' + f.message : '') + ' (' + localTime(f.at) + ')' : '';
      r.name.textContent = p.name || '-';
      r.name.title = p.version ? 'version ' + p.version : '';
      r.role.textContent = p.role || '-';
      const score = unit(p.score);
      r.fill.style.width = (score * 100).toFixed(1) + '%';
      r.fill.className = 'fill ' + (score >= 0.7 ? 'good' : score >= 0.4 ? 'fair' : 'poor');
      r.score.textContent = score.toFixed(2);
      r.rtt.textContent = millis(typeof p.rtt_ms === 'number' ? p.rtt_ms : p.handshake_rtt_ms);
      r.rtt.title = typeof p.rtt_ms === 'number' ? 'smoothed RTT' : "the last handshake's RTT";
      r.reliability.textContent = unit(p.reliability).toFixed(2);
      r.heard.title = p.last_heard ? localTime(p.last_heard) : 'never heard of';
      const dir = p.direction === 'inbound' ? ' (in)' : p.direction === 'outbound' ? ' (out)' : '';
      r.connected.textContent = p.connected ? 'yes' + dir : 'no';
      r.connected.title = p.connected_since ? 'since ' + localTime(p.connected_since) : '';
      r.text = [p.name, p.node_id, status, p.role, p.version].join(' ').toLowerCase();
      applyFilter(r);
    },
    tick(r, p) {
      setText(r.heard, relative(p.last_heard));
    },
  });

  $('filter').addEventListener('input', () => {
    filterWords = $('filter').value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const row of members.rows.values()) applyFilter(row);
    countMembers();
  });

  // ---- pending trust requests ----

  const pending = new Table($('pending-body'), {
    key: (q) => q.node_id,
    create(id) {
      const r = { tr: el('tr') };
      r.tr.dataset.pending = id;
      const idCell = el('td');
      const code = el('code', null, shortID(id));
      code.title = id;
      idCell.append(code);
      r.name = el('td', 'name');
      r.role = el('td');
      r.version = el('td');
      r.justification = el('td', 'justification');
      r.since = el('td');
      r.expires = el('td');
      const actions = el('td', 'actions');
      r.approve = el('button', 'approve', 'Approve');
      r.approve.type = 'button';
      r.approve.dataset.approve = id;
      r.reject = el('button', 'reject', 'Reject');
      r.reject.type = 'button';
      r.reject.dataset.reject = id;
      actions.append(r.approve, r.reject);
      r.tr.append(idCell, r.name, r.role, r.version, r.justification, r.since, r.expires, actions);
      return r;
    },
    fill(r, q) {
      r.label = q.name ? q.name + ' (' + q.node_id + ')' : q.node_id;
      r.name.textContent = q.name || '-';
      r.role.textContent = q.role || '-';
      r.version.textContent = q.version || '-';
      r.justification.textContent = q.justification || '-';
      r.since.title = localTime(q.since);
      r.expires.title = localTime(q.expires);
    },
    tick(r, q) {
      setText(r.since, relative(q.since));
      setText(r.expires, relative(q.expires));
    },
  });

  $('pending-body').addEventListener('click', (ev) => {
    const b = ev.target.closest('button');
    if (!b || b.disabled) return;
    if (b.dataset.approve) decide(b.dataset.approve, 'approve');
    else if (b.dataset.reject) decide(b.dataset.reject, 'reject');
  });

  // decide approves or rejects a pending node, then refreshes.
  async function decide(id, action) {
    const row = pending.rows.get(id);
    let body;
    if (action === 'reject') {
      const reason = window.prompt('Reject ' + (row ? row.label : id) + '?\nReason, told to the node (optional):', '');
      if (reason === null) return;
      if (reason.trim()) body = { reason: reason.trim() };
    }
    if (row) row.approve.disabled = row.reject.disabled = true;
    try {
      await call('POST', '/v1/trust/' + encodeURIComponent(id) + '/' + action, body);
      showMessage('');
    } catch (e) {
      if (e instanceof AuthError) {
        showLogin();
        return;
      }
      showMessage('Could not ' + action + ' ' + id + ': ' + e.message);
      if (row) row.approve.disabled = row.reject.disabled = false;
    }
    refresh();
  }

  // ---- blobs ----

  const blobs = new Table($('blobs-body'), {
    key: (b) => b.id,
    create(id) {
      const r = { tr: el('tr') };
      r.tr.dataset.blob = id;
      const idCell = el('td');
      idCell.append(el('code', null, id));
      r.size = el('td', 'num');
      r.stored = el('td');
      r.tr.append(idCell, r.size, r.stored);
      return r;
    },
    fill(r, b) {
      r.size.textContent = byteSize(b.size);
      r.size.title = b.size + ' bytes';
      r.stored.textContent = localTime(b.stored);
    },
  });

  function renderBlobs(list) {
    if (list instanceof APIError && list.status === 501) {
      blobs.sync([]);
      $('blobs').hidden = true;
      setText($('blobs-empty'), 'This daemon does not store blobs.');
      $('blobs-empty').hidden = false;
      setText($('blobs-count'), '');
      return;
    }
    if (list instanceof Error) throw list;
    blobs.sync(list);
    let total = 0;
    for (const b of list) total += b.size;
    setText($('blobs-count'), list.length ? list.length + ', ' + byteSize(total) : '');
    setText($('blobs-empty'), 'This node holds no blob.');
    $('blobs-empty').hidden = list.length !== 0;
    $('blobs').hidden = list.length === 0;
  }

  // ---- identity ----

  function renderID(id) {
    setText($('node-name'), id.name || 'peernode');
    const title = (id.name || shortID(id.node_id)) + ' \u00b7 peernode';
    if (document.title !== title) document.title = title;
    setText($('node-id'), id.node_id);
    setText($('network-kind'), id.private ? 'private' : 'public');
    setText($('network-id'), id.network_id);
    setText($('secret-fingerprint'), id.secret_fingerprint || '');
    $('fingerprint-item').hidden = !id.secret_fingerprint;
    setText($('version'), id.version);
  }

  // ---- views ----

  let loggedOut = false;

  function showLogin() {
    loggedOut = true;
    $('app').hidden = true;
    $('identity').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    setText($('status-line'), '');
    $('token').focus();
  }

  function showApp() {
    loggedOut = false;
    $('login').hidden = true;
    $('app').hidden = false;
    $('identity').hidden = false;
    $('logout').hidden = false;
  }

  function showMessage(text) {
    setText($('message'), text);
    $('message').hidden = !text;
  }

  function showStatus(text, bad) {
    setText($('status-line'), text);
    $('status-line').classList.toggle('error', !!bad);
  }

  // ---- refresh ----

  let timer = 0;
  let running = false;
  let again = false;

  // refresh reads everything the page shows and renders it; it runs every
  // REFRESH_MS, and at once after an action (after the one in flight).
  async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    clearTimeout(timer);
    try {
      const [id, peers, reqs, blobList] = await Promise.all([
        call('GET', '/v1/id'),
        call('GET', '/v1/peers'),
        call('GET', '/v1/trust/pending'),
        call('GET', '/v1/blobs').catch((e) => e),
      ]);
      if (blobList instanceof AuthError) throw blobList;
      showApp();
      renderID(id);
      members.sync(peers);
      countMembers();
      pending.sync(reqs);
      setText($('pending-count'), reqs.length ? String(reqs.length) : '');
      $('pending').hidden = reqs.length === 0;
      $('pending-empty').hidden = reqs.length !== 0;
      renderBlobs(blobList);
      showStatus('Updated ' + new Date().toLocaleTimeString() + '; refreshes every ' + REFRESH_MS / 1000 + 's.');
    } catch (e) {
      if (e instanceof AuthError) {
        showLogin();
      } else if (e instanceof TypeError) {
        showStatus('Cannot reach the daemon (stopped?); retrying every ' + REFRESH_MS / 1000 + 's.', true);
      } else {
        showStatus('Error: ' + e.message, true);
      }
    } finally {
      running = false;
    }
    if (loggedOut) return;
    if (again) {
      again = false;
      refresh();
      return;
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  $('logout').addEventListener('click', async () => {
    try {
      await call('POST', '/logout');
    } catch (e) {
      showMessage('Could not log out: ' + e.message);
      return;
    }
    window.location.replace('/');
  });

  // A failed login comes back as /?login=failed, a used or expired link as
  // /?login=expired.
  const login = new URLSearchParams(window.location.search).get('login');
  if (login) {
    const text = login === 'failed'
      ? 'Wrong token: it is the content of api.token in the daemon\'s data directory.'
      : 'This link was used already or has expired: run peernode webui again, or log in with the token.';
    setText($('login-error'), text);
    $('login-error').hidden = false;
    window.history.replaceState(null, '', '/');
  }

  refresh();
})();
