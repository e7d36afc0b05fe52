// wsguard browser and Node client: one dependency-free ES module.
//
// It speaks the wsguard protocol (docs/PROTOCOL.md in the wsguard
// repository): the handshake with one of three credentials, requests
// matched to their replies by id, reconnects with backoff and jitter, every
// channel resumed with `since`, publishes retried with their `cid` so a
// retry is stored once, and every error code and close code surfaced as a
// WsguardError.
//
// It never interprets message data as markup: what an app does with
// `data` is up to the app.

const SUBPROTOCOL = 'wsguard.v1';

// Codes the server answers requests with, and the client's own. The close
// codes map onto codes too (closeCodeName), so an app can switch on e.code
// alone and read e.closeCode when it cares how the socket ended.
const CLOSE_NAMES = {
  1000: 'closed',
  1001: 'going_away',
  1002: 'protocol_error',
  1003: 'protocol_error',
  1006: 'connection_lost',
  1007: 'protocol_error',
  1008: 'policy',
  1009: 'too_large',
  1011: 'unavailable',
  4001: 'session_ended',
  4003: 'forbidden',
  4008: 'rate_limited'
};

function closeCodeName(code) {
  return CLOSE_NAMES[code] || 'connection_lost';
}

/** WsguardError is the one error type the client rejects and reports with. */
export class WsguardError extends Error {
  constructor(code, message, details) {
    super(message || code);
    this.name = 'WsguardError';
    this.code = code;
    const d = details || {};
    if (d.closeCode !== undefined) this.closeCode = d.closeCode;
    if (d.status !== undefined) this.status = d.status;
    if (d.op !== undefined) this.op = d.op;
    if (d.channel !== undefined) this.channel = d.channel;
    if (d.cause !== undefined) this.cause = d.cause;
  }
}

const DEFAULTS = {
  timeout: 10000, // ms a request may wait for its answer, reconnects included
  backoffMin: 500, // first reconnect delay ceiling; doubles per failed attempt
  backoffMax: 30000,
  stable: 10000, // a connection open this long resets the backoff
  maxMessageBytes: 65536 // the server's default limits.max_message_bytes
};

// Requests that are safe to send again on a new connection: reads, and
// publishes (their cid makes the retry exactly-once).
const RESENDABLE = new Set(['publish', 'history', 'presence', 'ping']);

function randomCid() {
  const b = new Uint8Array(12);
  globalThis.crypto.getRandomValues(b);
  return 'c-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function byteLength(s) {
  return new TextEncoder().encode(s).length;
}

// resolveURL accepts wss://host/ws, https://host/ws or a path ("/ws")
// resolved against the page.
function resolveURL(url) {
  const base = typeof location !== 'undefined' ? location.href : undefined;
  const u = new URL(url, base);
  if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol === 'http:') u.protocol = 'ws:';
  return u;
}

function metaCSRF() {
  if (typeof document === 'undefined') return '';
  const m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.content : '';
}

/** Client is one logical connection to a wsguard server. */
export class Client {
  constructor(url, options) {
    const o = options || {};
    this._url = resolveURL(url);
    this._cred = o.credential === undefined ? 'session' : o.credential;
    if (this._cred !== 'session' && !(this._cred && (typeof this._cred.ticket === 'function' || typeof this._cred.token === 'function'))) {
      throw new TypeError('wsguard: credential must be "session", { ticket: async () => string } or { token: async () => string }');
    }
    this._WS = o.WebSocket || globalThis.WebSocket;
    if (typeof this._WS !== 'function') {
      throw new TypeError('wsguard: no WebSocket: pass { WebSocket } (Node 20 needs --experimental-websocket or the ws package)');
    }
    this._fetch = o.fetch || (typeof fetch === 'function' ? fetch.bind(globalThis) : null);
    this._csrf = o.csrfToken;
    const t = new URL(this._url.href);
    t.protocol = t.protocol === 'ws:' ? 'http:' : 'https:';
    t.pathname = '/api/v1/tickets';
    t.search = '';
    this._ticketURL = o.ticketURL || t.href;
    this._timeout = o.timeout || DEFAULTS.timeout;
    const b = o.backoff || {};
    this._backoffMin = b.min || DEFAULTS.backoffMin;
    this._backoffMax = b.max || DEFAULTS.backoffMax;
    this._maxBytes = o.maxMessageBytes || DEFAULTS.maxMessageBytes;

    this._handlers = new Map(); // event -> Set of functions
    this._subs = new Map(); // channel -> Subscription
    this._reqs = new Set(); // pending requests, in the order made
    this._wire = new Map(); // wire id -> request, on the current socket
    this._nextId = 1;
    this._ws = null;
    this._state = 'disconnected';
    this._stopped = false;
    this._attempt = 0;
    this._retryTimer = 0;
    this._stableTimer = 0;
    this._connectGen = 0;
    this._onOnline = () => {
      if (this._retryTimer) this._connectNow();
    };
    if (typeof globalThis.addEventListener === 'function' && typeof window !== 'undefined') {
      globalThis.addEventListener('online', this._onOnline);
    }
    // Connect after the caller had a chance to register handlers.
    queueMicrotask(() => this._connect());
  }

  /** state is "connecting", "connected" or "disconnected". */
  get state() {
    return this._state;
  }

  /** on registers fn for an event; it returns a function that removes it. */
  on(event, fn) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    const s = this._handlers.get(event);
    if (s) s.delete(fn);
  }

  _emit(event, value) {
    const s = this._handlers.get(event);
    if (!s) return;
    for (const fn of Array.from(s)) {
      try {
        fn(value);
      } catch (e) {
        // An app handler's bug must not break the connection.
        queueMicrotask(() => { throw e; });
      }
    }
  }

  _setState(s) {
    if (this._state === s) return;
    this._state = s;
    this._emit('state', s);
  }

  // ---- requests ----

  /**
   * request sends one operation and resolves with its result (or undefined
   * for ops answering only ok). It rejects with a WsguardError carrying the
   * server's code, "timeout" or "closed".
   */
  request(op, fields, opts) {
    const o = opts || {};
    const frame = Object.assign({}, fields, { op: op });
    delete frame.id;
    return new Promise((resolve, reject) => {
      if (this._stopped) {
        reject(new WsguardError('closed', 'the client is closed', { op: op }));
        return;
      }
      // id is filled in per send; the size counts a long one.
      const size = byteLength(JSON.stringify(Object.assign({ id: 9007199254740991 }, frame)));
      if (size > this._maxBytes) {
        reject(new WsguardError('too_large', op + ' request is ' + size + ' bytes; the limit is ' + this._maxBytes, { op: op, channel: frame.channel }));
        return;
      }
      const req = { op: op, frame: frame, resolve: resolve, reject: reject, id: 0, socket: null };
      req.timer = setTimeout(() => {
        this._finish(req);
        reject(new WsguardError('timeout', op + ' got no answer within ' + (o.timeout || this._timeout) + ' ms', { op: op, channel: frame.channel }));
      }, o.timeout || this._timeout);
      this._reqs.add(req);
      if (this._state === 'connected') this._send(req);
    });
  }

  _send(req) {
    const id = this._nextId++;
    req.id = id;
    req.socket = this._ws;
    this._wire.set(id, req);
    try {
      this._ws.send(JSON.stringify(Object.assign({ id: id }, req.frame)));
    } catch (e) {
      // The socket is closing; its close handler resends or rejects.
    }
  }

  _finish(req) {
    clearTimeout(req.timer);
    this._reqs.delete(req);
    if (req.id && this._wire.get(req.id) === req) this._wire.delete(req.id);
  }

  _onReply(m) {
    const req = this._wire.get(m.id);
    if (!req) {
      // id 0 answers a frame the server could not read: no request to
      // blame, so it is reported to the app.
      if (m.error) this._emit('error', new WsguardError(String(m.error.code || 'bad_request'), m.error.message));
      return;
    }
    this._finish(req);
    if (m.error) {
      req.reject(new WsguardError(String(m.error.code), m.error.message, { op: req.op, channel: req.frame.channel }));
    } else {
      req.resolve(m.result);
    }
  }

  /** publish stores data on channel; the answer comes once it is stored. */
  publish(channel, data, opts) {
    const o = opts || {};
    // The cid stays with the request across reconnects, so a retry of a
    // publish whose answer was lost is stored once.
    const cid = o.cid || randomCid();
    return this.request('publish', { channel: channel, cid: cid, data: data }, o).then((r) => ({ offset: r.offset, cid: cid }));
  }

  /** history reads stored messages, oldest first. */
  history(channel, opts) {
    const o = opts || {};
    const f = { channel: channel };
    if (o.limit !== undefined) f.limit = o.limit;
    if (o.before !== undefined) f.before = o.before;
    return this.request('history', f, o).then((r) => ({ messages: r.messages || [], more: r.more === true }));
  }

  /** presence lists the users subscribed to channel, sorted. */
  presence(channel, opts) {
    return this.request('presence', { channel: channel }, opts).then((r) => r.users || []);
  }

  /** ping checks that the connection answers. */
  ping(opts) {
    return this.request('ping', {}, opts).then(() => undefined);
  }

  // ---- subscriptions ----

  /**
   * subscribe joins channel now and after every reconnect, resuming with
   * since. onMessage sees each message once, in offset order.
   */
  subscribe(channel, opts) {
    if (this._subs.has(channel)) {
      throw new WsguardError('bad_request', 'already subscribed to ' + channel, { op: 'subscribe', channel: channel });
    }
    const sub = new Subscription(this, channel, opts || {});
    if (this._stopped) {
      sub._settle(new WsguardError('closed', 'the client is closed', { op: 'subscribe', channel: channel }));
      return sub;
    }
    this._subs.set(channel, sub);
    if (this._state === 'connected') this._subscribe(sub);
    return sub;
  }

  _subscribe(sub) {
    const fields = { channel: sub.channel };
    const since = sub._resume ? sub.offset : undefined;
    if (since !== undefined) fields.since = since;
    sub._pending = true;
    const socket = this._ws;
    this.request('subscribe', fields).then((r) => {
      sub._pending = false;
      if (this._subs.get(sub.channel) !== sub) return;
      const latest = Number(r.offset) || 0;
      if (since === undefined || r.recovered === false) {
        // A fresh subscription starts at the channel's head; a gap older
        // than retention is skipped (the app reloads history).
        if (latest > sub.offset) sub.offset = latest;
      }
      sub._resume = true;
      sub._settle(null, { offset: latest, recovered: r.recovered !== false });
      if (since !== undefined) sub._call('onRecover', { recovered: r.recovered !== false, offset: latest });
    }, (e) => {
      sub._pending = false;
      // A connection that ended resubscribes on the next one.
      if (this._subs.get(sub.channel) !== sub || e.closeCode !== undefined || e.code === 'closed' || e.code === 'connection_lost') return;
      if (e.code === 'forbidden' && since !== undefined) {
        // since replays history, which needs the history right: without
        // it, join from the head and say the gap was not recovered.
        sub._resume = false;
        sub._call('onRecover', { recovered: false, offset: sub.offset });
        if (this._ws === socket && this._state === 'connected') this._subscribe(sub);
        return;
      }
      if (e.code === 'timeout' || e.code === 'rate_limited' || e.code === 'unavailable') {
        // Worth another try on this connection, after a pause.
        setTimeout(() => {
          if (this._subs.get(sub.channel) === sub && this._ws === socket && this._state === 'connected' && !sub._pending) this._subscribe(sub);
        }, this._backoffMin);
        this._emit('error', e);
        return;
      }
      this._subs.delete(sub.channel);
      sub._settle(e);
      sub._call('onError', e);
      this._emit('error', e);
    });
  }

  _unsubscribe(sub) {
    if (this._subs.get(sub.channel) !== sub) return Promise.resolve();
    this._subs.delete(sub.channel);
    if (this._state !== 'connected') return Promise.resolve();
    return this.request('unsubscribe', { channel: sub.channel }).then(() => undefined, (e) => {
      if (e.code !== 'not_found' && e.code !== 'closed') throw e;
    });
  }

  _onPush(m) {
    if (m.push === 'message') {
      const sub = this._subs.get(m.channel);
      if (!sub) return;
      const offset = Number(m.offset);
      // Offsets are gap-free and increasing: anything at or below the last
      // one delivered is a replay overlapping what was already seen.
      if (!Number.isSafeInteger(offset) || offset <= sub.offset) return;
      sub.offset = offset;
      sub._call('onMessage', { channel: m.channel, offset: offset, from: m.from, ts: m.ts, data: m.data });
    } else if (m.push === 'presence') {
      const p = { channel: m.channel, join: m.join || [], leave: m.leave || [], more: m.more === true };
      const sub = this._subs.get(m.channel);
      if (sub) sub._call('onPresence', p);
      this._emit('presence', p);
    } else if (m.push === 'expiring') {
      this._emit('expiring', { in: m.in });
      if (this._cred.token) this._refresh();
    }
  }

  // _refresh asks the app for a new token and hands it to the server
  // before the old one ends.
  _refresh() {
    const socket = this._ws;
    Promise.resolve().then(() => this._cred.token()).then((tok) => {
      if (this._ws !== socket || this._state !== 'connected') return undefined;
      return this.request('refresh', { token: String(tok) }).then((r) => this._emit('refreshed', r));
    }).catch((e) => {
      this._emit('error', e instanceof WsguardError ? e : new WsguardError('credential_failed', 'token refresh failed: ' + (e && e.message), { cause: e }));
    });
  }

  // ---- connection ----

  async _credentialProtocol() {
    if (this._cred === 'session') {
      const csrf = this._csrf !== undefined ? this._csrf : metaCSRF();
      return 'wsguard.csrf.' + csrf;
    }
    if (this._cred.ticket) {
      return 'wsguard.ticket.' + String(await this._cred.ticket());
    }
    // A browser cannot put Authorization on a WebSocket: the JWT buys a
    // one-time ticket, which the socket presents.
    const jwt = String(await this._cred.token());
    if (!this._fetch) throw new WsguardError('credential_failed', 'no fetch to exchange the token for a ticket');
    const r = await this._fetch(this._ticketURL, { method: 'POST', headers: { Authorization: 'Bearer ' + jwt }, cache: 'no-store', credentials: 'omit' });
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      body = null;
    }
    if (!r.ok || !body || typeof body.ticket !== 'string') {
      const err = body && body.error ? body.error : {};
      throw new WsguardError(String(err.code || 'credential_failed'), 'ticket for token refused: ' + (err.message || r.status), { status: r.status });
    }
    return 'wsguard.ticket.' + body.ticket;
  }

  _connectNow() {
    clearTimeout(this._retryTimer);
    this._retryTimer = 0;
    this._connect();
  }

  async _connect() {
    if (this._stopped || this._ws !== null || this._retryTimer) return;
    const gen = ++this._connectGen;
    this._setState('connecting');
    let proto;
    try {
      proto = await this._credentialProtocol();
    } catch (e) {
      if (gen !== this._connectGen || this._stopped) return;
      this._emit('error', e instanceof WsguardError ? e : new WsguardError('credential_failed', 'credential: ' + (e && e.message), { cause: e }));
      this._setState('disconnected');
      this._scheduleReconnect(false);
      return;
    }
    if (gen !== this._connectGen || this._stopped) return;
    let ws;
    try {
      ws = new this._WS(this._url.href, [SUBPROTOCOL, proto]);
    } catch (e) {
      this._emit('error', new WsguardError('connection_lost', 'cannot open ' + this._url.href + ': ' + (e && e.message), { cause: e }));
      this._setState('disconnected');
      this._scheduleReconnect(false);
      return;
    }
    this._ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this._ws !== ws) return;
      opened = true;
      this._onOpen();
    };
    ws.onmessage = (e) => {
      if (this._ws !== ws || typeof e.data !== 'string') return;
      let m;
      try {
        m = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (!m || typeof m !== 'object') return;
      if (typeof m.push === 'string') this._onPush(m);
      else if (typeof m.id === 'number') this._onReply(m);
    };
    ws.onerror = () => {
      // A refused handshake: some WebSocket implementations (Node 20's)
      // report only an error, never a close, so the error ends it here.
      if (this._ws !== ws || opened) return;
      this._onClose(ws, 1006, '', false);
      try {
        ws.close();
      } catch (e) {
        // Not open yet: nothing to close.
      }
    };
    ws.onclose = (e) => {
      if (this._ws !== ws) return;
      this._onClose(ws, e.code, e.reason, opened);
    };
  }

  _onOpen() {
    this._wire.clear();
    // Requests go out on this socket from now on. Subscribes first, so a
    // retried publish comes back as a push too; then what was waiting; then
    // the state event, so what its handlers send comes after all that.
    this._state = 'connected';
    for (const sub of this._subs.values()) this._subscribe(sub);
    for (const req of Array.from(this._reqs)) {
      if (req.socket !== this._ws) this._send(req);
    }
    this._emit('state', 'connected');
    this._stableTimer = setTimeout(() => { this._attempt = 0; }, 10000);
  }

  _onClose(ws, code, reason, opened) {
    this._ws = null;
    clearTimeout(this._stableTimer);
    this._wire.clear();
    // Requests that were on this socket: reads and publishes go again on
    // the next connection; others cannot outlive it.
    for (const req of Array.from(this._reqs)) {
      if (req.socket !== ws) continue;
      req.socket = null;
      req.id = 0;
      if (code === 1009) {
        this._finish(req);
        req.reject(new WsguardError('too_large', 'the server closed the connection: message too large', { closeCode: code, op: req.op, channel: req.frame.channel }));
      } else if (!RESENDABLE.has(req.op)) {
        this._finish(req);
        if (req.op === 'unsubscribe') req.resolve(undefined);
        else req.reject(new WsguardError('connection_lost', req.op + ' was cut off by the connection ending', { closeCode: code, op: req.op }));
      }
    }
    let err;
    if (!opened) {
      // A refused handshake: browsers hide the status, so this is all the
      // client can know. It retries with backoff; the app may close().
      err = new WsguardError('handshake_failed', 'the server refused or could not be reached (close ' + code + ')', { closeCode: code });
    } else {
      err = new WsguardError(closeCodeName(code), reason || 'connection closed (' + code + ')', { closeCode: code });
    }
    this._setState('disconnected');
    this._emit('error', err);
    if (this._stopped) return;
    if (opened && (code === 4003 || code === 1002 || code === 1003 || code === 1007 ||
        (code === 4001 && this._cred === 'session'))) {
      // Retrying cannot help: forbidden, a client bug, or a session that
      // ended (signing in again is the only way back).
      this._stop(err);
      return;
    }
    this._scheduleReconnect(opened && (code === 1001 || code === 4001));
  }

  // _scheduleReconnect waits with exponential backoff and jitter (a random
  // point in the upper half of a doubling ceiling), so a restarted server
  // is not hit by every client at the same instant.
  _scheduleReconnect(quick) {
    if (this._stopped || this._retryTimer) return;
    let delay;
    if (quick) {
      delay = Math.min(this._backoffMin, 100) + Math.random() * this._backoffMin;
    } else {
      const cap = Math.min(this._backoffMax, this._backoffMin * Math.pow(2, this._attempt));
      delay = cap / 2 + Math.random() * (cap / 2);
    }
    this._attempt++;
    this._retryTimer = setTimeout(() => {
      this._retryTimer = 0;
      this._connect();
    }, delay);
  }

  _stop(err) {
    this._stopped = true;
    clearTimeout(this._retryTimer);
    this._retryTimer = 0;
    clearTimeout(this._stableTimer);
    if (typeof globalThis.removeEventListener === 'function') globalThis.removeEventListener('online', this._onOnline);
    for (const req of Array.from(this._reqs)) {
      this._finish(req);
      req.reject(err);
    }
    for (const sub of this._subs.values()) sub._settle(err);
    this._setState('disconnected');
  }

  /** close ends the connection for good; pending requests reject "closed". */
  close() {
    if (this._stopped) return;
    const ws = this._ws;
    this._ws = null;
    this._connectGen++;
    this._stop(new WsguardError('closed', 'the client is closed', { closeCode: 1000 }));
    if (ws) {
      try {
        ws.close(1000);
      } catch (e) {
        // Already closing.
      }
    }
  }
}

/** Subscription is one channel joined by subscribe. */
export class Subscription {
  constructor(client, channel, opts) {
    this._client = client;
    this.channel = channel;
    this._opts = opts;
    const since = Number(opts.since);
    // offset is the last offset delivered (or the head at subscribe); a
    // reconnect resumes after it.
    this.offset = opts.since !== undefined && Number.isSafeInteger(since) && since >= 0 ? since : 0;
    this._resume = opts.since !== undefined;
    this._pending = false;
    this._settled = false;
    this.ready = new Promise((resolve, reject) => {
      this._resolve = resolve;
      this._reject = reject;
    });
    this.ready.catch(() => {}); // reported through onError and "error" too
  }

  _settle(err, value) {
    if (this._settled) return;
    this._settled = true;
    if (err) this._reject(err);
    else this._resolve(value);
  }

  _call(name, value) {
    const fn = this._opts[name];
    if (typeof fn !== 'function') return;
    try {
      fn(value);
    } catch (e) {
      queueMicrotask(() => { throw e; });
    }
  }

  /** unsubscribe leaves the channel. */
  unsubscribe() {
    return this._client._unsubscribe(this);
  }
}
