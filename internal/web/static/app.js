// wsguard browser chat (the protocol: docs/PROTOCOL.md), built on the
// browser client every node serves at /client/wsguard.js (clients/js): the
// client owns the socket, reconnects, resumes rooms with since and retries
// publishes exactly once; this file owns the page.
//
// Security rule for this file: every string that came from the server or a
// user (names, channel names, message text, error messages) reaches the page
// only through textContent or an attribute set by property. Nothing is ever
// parsed as HTML, so a message "<img src=x onerror=...>" is shown as text.
import { Client } from '/client/wsguard.js';

(function () {
  'use strict';

  const NAMESPACE = /^[a-z][a-z0-9_-]{0,31}$/;
  const NAME = /^[A-Za-z0-9_@.=-]{1,128}$/;
  const HISTORY_LIMIT = 50;
  const KEEP_PER_ROOM = 500; // rendered messages kept per room
  const BUFFER_MAX = 1000; // live pushes held while a room's history loads
  const PUBLISH_TIMEOUT_MS = 30000; // a message typed during an outage waits this long

  const ERRORS = {
    rate_limited: 'You are sending too fast. Wait a moment and try again.',
    forbidden: 'You are not allowed to do that.',
    too_large: 'That message is too large.',
    bad_request: 'The server refused that request.',
    not_found: 'Not found.',
    unavailable: 'The server is busy. Try again in a moment.',
    timeout: 'The server did not answer in time. Try again.'
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
  let current = null;
  let stopped = false; // the page gave up: session ended, origin refused
  let everConnected = false;

  const client = new Client('/ws', { credential: 'session', csrfToken: csrfToken });

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
      lastOffset: 0, loading: false, buffer: [], sub: null,
      unread: 0, rendered: [],
      seenBefore: seenOffset(name), newMarked: false
    };
    button.addEventListener('click', () => {
      select(name);
      if (el.sendInput) el.sendInput.focus();
    });
    channels.set(name, ch);
    subscribe(ch);
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

  function finishLoading(ch) {
    ch.loading = false;
    const held = ch.buffer;
    ch.buffer = [];
    held.sort((a, b) => Number(a.offset) - Number(b.offset));
    held.forEach((m) => deliver(ch, m, true));
  }

  // ---- protocol ----

  // subscribe joins a room through the client, which resumes it with
  // since after every reconnect and hands over each message once, in
  // order. A new room reads its latest page of history once joined.
  function subscribe(ch) {
    ch.loading = true;
    ch.sub = client.subscribe(ch.name, {
      onMessage: (m) => {
        if (ch.loading) {
          // History is on its way: hold live pushes so the page stays in order.
          ch.buffer.push(m);
          if (ch.buffer.length > BUFFER_MAX) ch.buffer.shift();
          return;
        }
        deliver(ch, m, true);
      },
      // The gap is older than the server keeps for replay: read the
      // latest page (duplicates are dropped).
      onRecover: (r) => { if (!r.recovered) loadHistory(ch); },
      onError: (e) => {
        showError(ch.name + ': ' + describe(e));
        if (channels.get(ch.name) === ch) {
          removeRoom(ch.name);
          saveRooms();
        }
      }
    });
    ch.sub.ready.then(() => loadHistory(ch), () => {});
  }

  function loadHistory(ch) {
    ch.loading = true;
    client.history(ch.name, { limit: HISTORY_LIMIT }).then((r) => {
      if (channels.get(ch.name) !== ch) return;
      r.messages.forEach((x) => deliver(ch, x, false));
      finishLoading(ch);
    }, (e) => {
      if (channels.get(ch.name) !== ch) return;
      showError(ch.name + ': ' + describe(e));
      finishLoading(ch);
    });
  }

  function publish(text) {
    if (!current || stopped) return;
    // The client keeps the message's cid across reconnects, so a retry of
    // a publish whose answer was lost is stored once (exactly-once).
    client.publish(current.name, { text: text }, { timeout: PUBLISH_TIMEOUT_MS }).then(() => showError(''), (e) => {
      if (stopped) return;
      // Give the text back so nothing typed is lost.
      if (el.sendInput && el.sendInput.value === '') el.sendInput.value = text;
      showError(describe(e));
    });
  }

  // ---- connection ----

  client.on('state', (s) => {
    if (stopped) return;
    if (s === 'connected') {
      everConnected = true;
      // The ping is answered after the subscribes sent before it: the
      // rooms are joined once it is.
      const ping = client.ping();
      ping.then(() => {
        if (!stopped && client.state === 'connected') setStatus('connected', 'connected');
      }, () => {});
    } else if (s === 'connecting' && !everConnected) {
      setStatus('connecting', 'connecting');
    } else {
      setStatus('reconnecting', 'reconnecting');
    }
  });

  client.on('expiring', () => {
    showError('Your session ends soon. Sign in again to keep chatting.');
  });

  client.on('error', (e) => {
    if (stopped) return;
    switch (e.code) {
      case 'session_ended': // 4001: signing in again is the only way back
        endSession();
        break;
      case 'forbidden': // 4003: retrying would be refused again
        if (e.closeCode === 4003) {
          stopped = true;
          client.close();
          setStatus('disconnected', 'disconnected');
          showError('The server closed the connection. Reload the page to try again. (forbidden)');
        }
        break;
      case 'handshake_failed': // the browser hides the status: ask the server why
        probeSession();
        break;
      default:
        // A reply to a frame the server could not read (no request to blame).
        if (e.closeCode === undefined && !e.op && ERRORS[e.code]) showError(describe(e));
    }
  });

  // probeSession runs after a handshake failed: if the page itself now
  // redirects, the session is gone. The client keeps retrying meanwhile.
  function probeSession() {
    fetch('/', { redirect: 'manual', credentials: 'same-origin', cache: 'no-store' })
      .then((r) => {
        if (r.type === 'opaqueredirect' || r.status === 401 || r.status === 403) endSession();
        else probeOrigin();
      }, () => {});
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
        if (stopped || !/^origin_[a-z_]+$/.test(reason)) return;
        stopped = true;
        client.close();
        setStatus('disconnected', 'refused');
        showError('The server refuses this page\'s origin (' + location.origin + '), so the chat cannot connect. ' +
          'Its operator must add it to allowed_origins, or set public_url to it, in the server\'s config. (' + reason + ')');
      }, () => {});
  }

  function endSession() {
    if (stopped) return;
    stopped = true;
    client.close();
    setStatus('ended', 'session ended');
    if (el.ended) el.ended.hidden = false;
    [el.sendInput, el.joinInput].forEach((x) => { if (x) x.disabled = true; });
    document.querySelectorAll('#send-form button, #join-form button').forEach((b) => { b.disabled = true; });
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
    const ch = channels.get(name);
    if (!ch) return;
    ch.sub.unsubscribe().catch(() => {});
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

  // ---- start ----

  const initial = (el.rooms.dataset.rooms || '').split(/\s+/).filter(validChannel);
  if (initial.length === 0) initial.push('room:lobby');
  initial.forEach(addRoom);
  select(initial[0]);
  setStatus('connecting', 'connecting');
})();
