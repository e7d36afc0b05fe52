// wsguard browser chat client (the protocol: docs/PROTOCOL.md).
//
// Security rule for this file: every string that came from the server or a
// user (names, channel names, message text, error messages) reaches the page
// only through textContent or an attribute set by property. Nothing is ever
// parsed as HTML, so a message "<img src=x onerror=...>" is shown as text.
(function () {
  'use strict';

  const NAMESPACE = /^[a-z][a-z0-9_-]{0,31}$/;
  const NAME = /^[A-Za-z0-9_@.=-]{1,128}$/;
  const HISTORY_LIMIT = 50;
  const KEEP_PER_ROOM = 500; // rendered messages kept per room
  const BUFFER_MAX = 1000; // live pushes held while a room's history loads
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const STABLE_MS = 10000; // a connection open this long resets the backoff

  const ERRORS = {
    rate_limited: 'You are sending too fast. Wait a moment and try again.',
    forbidden: 'You are not allowed to do that.',
    too_large: 'That message is too large.',
    bad_request: 'The server refused that request.',
    not_found: 'Not found.',
    unavailable: 'The server is busy. Try again in a moment.'
  };

  const $ = (id) => document.getElementById(id);
  const el = {
    chat: document.querySelector('.chat'),
    status: $('status'),
    rooms: $('rooms'),
    joinForm: $('join-form'),
    joinInput: $('join-input'),
    sendForm: $('send-form'),
    sendInput: $('send-input'),
    messages: $('messages'),
    error: $('error'),
    ended: $('session-ended'),
    title: $('room-title')
  };
  if (!el.chat || !el.rooms || !el.messages || !el.status) {
    return; // not the chat page
  }
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = meta ? meta.content : '';
  const me = el.chat.dataset.user || '';

  const channels = new Map(); // name -> room state
  const requests = new Map(); // request id -> what it was, for its reply
  const outbox = new Map(); // cid -> unacknowledged publish, in send order
  let current = null;
  let ws = null;
  let nextId = 1;
  let attempt = 0;
  let retryTimer = 0;
  let stableTimer = 0;
  let pendingSubs = 0; // subscribe answers still due before "connected"
  let stopped = false;

  function validChannel(s) {
    const i = s.indexOf(':');
    if (i < 0) return false;
    const ns = s.slice(0, i);
    const name = s.slice(i + 1);
    return NAMESPACE.test(ns) && NAME.test(name) && !name.includes('..');
  }

  function setStatus(state, text) {
    el.status.textContent = text;
    el.status.dataset.state = state;
  }

  function showError(text) {
    if (el.error) el.error.textContent = text;
  }

  function describe(err) {
    const code = err && typeof err.code === 'string' ? err.code : 'error';
    return (ERRORS[code] || 'Something went wrong.') + ' (' + code + ')';
  }

  function newCid() {
    const b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return 'c-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function isOpen() {
    return ws !== null && ws.readyState === WebSocket.OPEN;
  }

  // request sends one operation and remembers it until its reply arrives.
  function request(op, fields, ctx) {
    if (!isOpen()) return false;
    const id = nextId++;
    requests.set(id, Object.assign({ op: op }, ctx));
    ws.send(JSON.stringify(Object.assign({ id: id, op: op }, fields)));
    return true;
  }

  // ---- rooms ----

  function addRoom(name) {
    if (channels.has(name)) return channels.get(name);
    const li = document.createElement('li');
    li.dataset.channel = name;
    const button = document.createElement('button');
    button.type = 'button';
    button.setAttribute('aria-current', 'false');
    const label = document.createElement('span');
    label.className = 'name';
    label.textContent = name;
    const badge = document.createElement('span');
    badge.className = 'unread';
    button.append(label, badge);
    li.append(button, leaveButton(name));
    el.rooms.append(li);
    const ch = {
      name: name, item: li, button: button, badge: badge,
      lastOffset: 0, synced: false, loading: false, buffer: [],
      unread: 0, rendered: [],
      seenBefore: seenOffset(name), newMarked: false
    };
    button.addEventListener('click', () => {
      select(name);
      if (el.sendInput) el.sendInput.focus();
    });
    channels.set(name, ch);
    subscribe(ch, false);
    return ch;
  }

  function removeRoom(name) {
    const ch = channels.get(name);
    if (!ch) return;
    channels.delete(name);
    ch.item.remove();
    ch.rendered.forEach((li) => li.remove());
    if (current === ch) {
      current = null;
      const first = channels.keys().next();
      if (!first.done) select(first.value);
      else if (el.title) el.title.textContent = 'Chat';
    }
  }

  function updateBadge(ch) {
    ch.badge.textContent = ch.unread > 0 ? String(ch.unread) : '';
    ch.badge.title = ch.unread > 0 ? ch.unread + ' unread' : '';
  }

  function select(name) {
    const ch = channels.get(name);
    if (!ch) return;
    current = ch;
    ch.unread = 0;
    updateBadge(ch);
    rememberSeen(ch);
    channels.forEach((c) => c.button.setAttribute('aria-current', c === ch ? 'true' : 'false'));
    if (el.title) el.title.textContent = name;
    for (const li of el.messages.children) {
      li.hidden = li.dataset.channel !== name;
    }
    el.messages.scrollTop = el.messages.scrollHeight;
  }

  // ---- messages ----

  function messageText(data) {
    if (data && typeof data.text === 'string') return data.text;
    try {
      return JSON.stringify(data);
    } catch (e) {
      return '';
    }
  }

  function render(ch, m) {
    const li = document.createElement('li');
    li.dataset.offset = String(m.offset);
    li.dataset.channel = ch.name;
    const from = document.createElement('span');
    from.className = 'from';
    from.textContent = typeof m.from === 'string' ? m.from : '';
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = messageText(m.data);
    const time = document.createElement('time');
    const d = new Date(m.ts);
    if (typeof m.ts === 'string' && !isNaN(d.getTime())) {
      time.dateTime = m.ts;
      time.title = d.toLocaleString();
      time.textContent = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    }
    if (me !== '' && m.from === me) li.classList.add('mine');
    li.append(from, text, time);
    li.hidden = ch !== current;

    const box = el.messages;
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
    box.append(li);
    ch.rendered.push(li);
    if (ch.rendered.length > KEEP_PER_ROOM) ch.rendered.shift().remove();
    if (atEnd && !li.hidden) box.scrollTop = box.scrollHeight;
  }

  // deliver shows m once: offsets are strictly increasing per channel, so
  // anything at or below the last one shown is a duplicate (a replay or a
  // history page overlapping live pushes) and is dropped.
  function deliver(ch, m, live) {
    const offset = Number(m.offset);
    if (!Number.isSafeInteger(offset) || offset <= ch.lastOffset) return;
    ch.lastOffset = offset;
    if (!live) markNewSinceLeft(ch, m, offset);
    render(ch, m);
    if (ch === current && !document.hidden) rememberSeen(ch);
    if (live && ch !== current) {
      ch.unread++;
      updateBadge(ch);
    }
  }

  function onPush(m) {
    if (m.push === 'expiring') {
      showError('Your session ends soon. Sign in again to keep chatting.');
      return;
    }
    if (m.push !== 'message') return;
    const ch = channels.get(m.channel);
    if (!ch) return;
    if (ch.loading) {
      // History is on its way: hold live pushes so the page stays in order.
      ch.buffer.push(m);
      if (ch.buffer.length > BUFFER_MAX) ch.buffer.shift();
      return;
    }
    deliver(ch, m, true);
  }

  function finishLoading(ch) {
    ch.loading = false;
    const held = ch.buffer;
    ch.buffer = [];
    held.sort((a, b) => Number(a.offset) - Number(b.offset));
    held.forEach((m) => deliver(ch, m, true));
  }

  // ---- protocol ----

  // subscribe (re)joins a room. A room already shown asks for what it
  // missed with since; a new one reads history once the answer is in.
  function subscribe(ch, initial) {
    const fields = { channel: ch.name };
    if (ch.synced) {
      fields.since = ch.lastOffset;
    } else {
      ch.loading = true;
    }
    if (request('subscribe', fields, { channel: ch.name, initial: initial }) && initial) {
      pendingSubs++;
    }
  }

  function subscribeAnswered(req) {
    if (req.initial && --pendingSubs === 0) setStatus('connected', 'connected');
  }

  function sendPublish(p) {
    request('publish', { channel: p.channel, cid: p.cid, data: { text: p.text } }, { cid: p.cid, text: p.text });
  }

  function publish(text) {
    if (!current || stopped) return;
    // The cid stays with the message across reconnects, so a retry of a
    // publish whose answer was lost is stored once (exactly-once).
    const p = { channel: current.name, cid: newCid(), text: text };
    outbox.set(p.cid, p);
    sendPublish(p);
  }

  function onReply(m) {
    const req = requests.get(m.id);
    if (!req) {
      if (m.error) showError(describe(m.error));
      return;
    }
    requests.delete(m.id);
    const ch = req.channel ? channels.get(req.channel) : null;
    if (m.error) {
      onRequestError(req, ch, m.error);
      return;
    }
    const result = m.result || {};
    switch (req.op) {
      case 'subscribe':
        subscribeAnswered(req);
        if (ch && (!ch.synced || result.recovered === false)) {
          // New room, or the gap is older than the server keeps for
          // replay: read the latest page (duplicates are dropped).
          ch.loading = true;
          if (!request('history', { channel: ch.name, limit: HISTORY_LIMIT }, { channel: ch.name })) {
            finishLoading(ch);
          }
        }
        break;
      case 'history':
        if (ch) {
          const list = Array.isArray(result.messages) ? result.messages : [];
          list.forEach((x) => deliver(ch, x, false));
          ch.synced = true;
          finishLoading(ch);
        }
        break;
      case 'publish':
        outbox.delete(req.cid);
        showError('');
        break;
    }
  }

  function onRequestError(req, ch, err) {
    const code = err && err.code;
    if (req.op === 'publish') {
      outbox.delete(req.cid);
      // Give the text back so nothing typed is lost.
      if (el.sendInput && el.sendInput.value === '') el.sendInput.value = req.text;
      showError(describe(err));
      return;
    }
    if (req.op === 'subscribe') subscribeAnswered(req);
    showError(req.channel + ': ' + describe(err));
    if (!ch) return;
    if (code === 'forbidden' || code === 'bad_request' || code === 'not_found') {
      removeRoom(ch.name);
      saveRooms();
    } else if (req.op === 'history') {
      finishLoading(ch);
    }
  }

  function onFrame(raw) {
    let m;
    try {
      m = JSON.parse(raw);
    } catch (e) {
      return;
    }
    if (!m || typeof m !== 'object') return;
    if (typeof m.push === 'string') onPush(m);
    else if (typeof m.id === 'number') onReply(m);
  }

  // ---- connection ----

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    if (stopped || ws !== null) return;
    const scheme = location.protocol === 'http:' ? 'ws:' : 'wss:';
    let sock;
    try {
      sock = new WebSocket(scheme + '//' + location.host + '/ws', ['wsguard.v1', 'wsguard.csrf.' + csrfToken]);
    } catch (e) {
      scheduleReconnect(false);
      return;
    }
    ws = sock;
    let opened = false;
    sock.addEventListener('open', () => {
      if (ws !== sock) return;
      opened = true;
      onOpen();
    });
    sock.addEventListener('message', (e) => {
      if (ws === sock && typeof e.data === 'string') onFrame(e.data);
    });
    sock.addEventListener('close', (e) => {
      if (ws === sock) onClose(e, opened);
    });
  }

  function onOpen() {
    requests.clear();
    pendingSubs = 0;
    channels.forEach((ch) => subscribe(ch, true));
    // Retries go after the subscribes so our own messages come back as pushes.
    outbox.forEach(sendPublish);
    if (pendingSubs === 0) setStatus('connected', 'connected');
    stableTimer = setTimeout(() => { attempt = 0; }, STABLE_MS);
  }

  function onClose(e, opened) {
    ws = null;
    clearTimeout(stableTimer);
    requests.clear();
    pendingSubs = 0;
    switch (e.code) {
      case 4001: // session ended or credential expired: signing in again is the only way back
        endSession();
        return;
      case 4003: // forbidden: retrying would be refused again
        stopped = true;
        setStatus('disconnected', 'disconnected');
        showError('The server closed the connection. Reload the page to try again. (forbidden)');
        return;
      case 1001: // server going away: another node or the restarted one takes us
        scheduleReconnect(true);
        return;
      default: // includes 4008 (rate limited or too slow): back off
        if (!opened) {
          probeSession();
          return;
        }
        scheduleReconnect(false);
    }
  }

  // probeSession runs after a handshake failed (the browser hides its
  // status): if the page itself now redirects, the session is gone.
  function probeSession() {
    setStatus('reconnecting', 'reconnecting');
    fetch('/', { redirect: 'manual', credentials: 'same-origin', cache: 'no-store' })
      .then((r) => {
        if (r.type === 'opaqueredirect' || r.status === 401 || r.status === 403) endSession();
        else probeOrigin();
      }, () => scheduleReconnect(false));
  }

  // probeOrigin asks the server whether it refuses this page's own origin
  // (POST, so the browser sends Origin): a server whose allowed_origins or
  // public_url names another port or host refuses every handshake, and
  // retrying cannot help. The answer is a reason code and nothing more.
  function probeOrigin() {
    fetch('/ws/origin', { method: 'POST', credentials: 'same-origin', cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : {}))
      .then((v) => {
        const reason = v && typeof v.reason === 'string' ? v.reason : '';
        if (!/^origin_[a-z_]+$/.test(reason)) {
          scheduleReconnect(false);
          return;
        }
        stopped = true;
        setStatus('disconnected', 'refused');
        showError('The server refuses this page\'s origin (' + location.origin + '), so the chat cannot connect. ' +
          'Its operator must add it to allowed_origins, or set public_url to it, in the server\'s config. (' + reason + ')');
      }, () => scheduleReconnect(false));
  }

  function endSession() {
    stopped = true;
    clearTimeout(retryTimer);
    setStatus('ended', 'session ended');
    if (el.ended) el.ended.hidden = false;
    [el.sendInput, el.joinInput].forEach((x) => { if (x) x.disabled = true; });
    document.querySelectorAll('#send-form button, #join-form button').forEach((b) => { b.disabled = true; });
  }

  // scheduleReconnect waits with exponential backoff and jitter (0.5 s
  // doubling to 30 s, a random point in the upper half), so a restarted
  // server is not hit by every client at the same instant.
  function scheduleReconnect(quick) {
    if (stopped || retryTimer) return;
    setStatus('reconnecting', 'reconnecting');
    let delay;
    if (quick) {
      delay = 100 + Math.random() * 500;
    } else {
      const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempt));
      delay = cap / 2 + Math.random() * (cap / 2);
    }
    attempt++;
    retryTimer = setTimeout(connect, delay);
  }

  // ---- saved rooms ----

  // The joined rooms are kept on the server per user (PUT /api/v1/rooms),
  // so a reload or another device opens the same ones; the page is
  // rendered with the saved list. Saves are debounced: joining three rooms
  // quickly is one request.
  let saveTimer = 0;

  function saveRooms() {
    clearTimeout(saveTimer);
    saveTimer = setTimeout(putRooms, 300);
  }

  function putRooms() {
    saveTimer = 0;
    fetch('/api/v1/rooms', {
      method: 'PUT',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken },
      body: JSON.stringify({ rooms: Array.from(channels.keys()) })
    }).then((r) => {
      if (!r.ok) showError('Your rooms could not be saved for next time. (' + r.status + ')');
    }, () => showError('Your rooms could not be saved for next time. (network)'));
  }

  function leaveButton(name) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'leave';
    b.textContent = '\u00d7';
    b.title = 'Leave ' + name;
    b.setAttribute('aria-label', 'Leave ' + name);
    b.addEventListener('click', () => leaveRoom(name));
    return b;
  }

  function leaveRoom(name) {
    if (!channels.has(name)) return;
    request('unsubscribe', { channel: name }, { channel: name });
    removeRoom(name);
    saveRooms();
  }

  // ---- new since you left ----

  // The last offset seen per room is kept in this browser (localStorage,
  // per user): on the next visit the first message after it is preceded by
  // a "New since you left" line. A room never opened here has no mark.
  const SEEN_KEY = 'wsguard.seen.' + me;
  const SEEN_MAX = 200; // rooms remembered per user in this browser

  function loadSeen() {
    try {
      const v = JSON.parse(localStorage.getItem(SEEN_KEY) || '{}');
      return v && typeof v === 'object' ? v : {};
    } catch (e) {
      return {};
    }
  }

  const seen = loadSeen();

  function seenOffset(name) {
    const v = Number(seen[name]);
    return Number.isSafeInteger(v) && v > 0 ? v : 0;
  }

  // rememberSeen records that the reader saw ch up to its last message.
  function rememberSeen(ch) {
    if (ch.lastOffset <= 0 || seenOffset(ch.name) >= ch.lastOffset) return;
    delete seen[ch.name]; // re-insert last: the oldest entries go first
    seen[ch.name] = ch.lastOffset;
    const names = Object.keys(seen);
    for (let i = 0; i < names.length - SEEN_MAX; i++) delete seen[names[i]];
    try {
      localStorage.setItem(SEEN_KEY, JSON.stringify(seen));
    } catch (e) {
      // Storage full or disabled: the marker is a convenience.
    }
  }

  // A message that arrived while the tab was in the background was not
  // seen yet; it is once the tab shows again.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && current) rememberSeen(current);
  });

  // markNewSinceLeft puts the marker before the first message of someone
  // else past what this browser saw last time, once per room and page.
  function markNewSinceLeft(ch, m, offset) {
    if (ch.newMarked || ch.seenBefore <= 0 || offset <= ch.seenBefore) return;
    if (me !== '' && m.from === me) return;
    ch.newMarked = true;
    const li = document.createElement('li');
    li.className = 'new-marker';
    li.dataset.channel = ch.name;
    li.setAttribute('role', 'separator');
    li.textContent = 'New since you left';
    li.hidden = ch !== current;
    el.messages.append(li);
    ch.rendered.push(li);
  }

  // ---- forms ----

  // Each form is handled on submit; the formdata handler covers a script
  // calling form.submit(), which fires no submit event (the form's action
  // answers 204, so the page stays). The inputs have no name: nothing
  // typed is ever put in that request.
  function onForm(form, handle) {
    if (!form) return;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      handle();
    });
    form.addEventListener('formdata', handle);
  }

  onForm(el.sendForm, () => {
    const text = el.sendInput.value;
    if (text.trim() === '') return;
    el.sendInput.value = '';
    publish(text);
  });

  onForm(el.joinForm, () => {
    let name = el.joinInput.value.trim();
    if (name === '') return;
    if (!name.includes(':')) name = 'room:' + name;
    if (!validChannel(name)) {
      showError('Room names look like room:name, using letters, digits and _ @ . = - (bad_request)');
      return;
    }
    el.joinInput.value = '';
    showError('');
    addRoom(name);
    select(name);
    saveRooms();
  });

  window.addEventListener('online', () => {
    if (!stopped && ws === null) connect();
  });

  // ---- start ----

  const initial = (el.rooms.dataset.rooms || '').split(/\s+/).filter(validChannel);
  if (initial.length === 0) initial.push('room:lobby');
  initial.forEach(addRoom);
  select(initial[0]);
  setStatus('connecting', 'connecting');
  connect();
})();
