// The client against a real wsguard server. A Go test
// (internal/server/jsclient_test.go) starts the server and runs this file
// with the environment below; run alone, it fails saying so.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { Client, WsguardError } from '../wsguard.js';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(name + ' is not set: run this through go test -run TestJSClientNode ./internal/server/');
  return v;
};
const WS_URL = env('WSGUARD_URL'); // wss://localhost:PORT/ws
const HTTP_URL = env('WSGUARD_HTTP'); // https://localhost:PORT
const SECRET = Buffer.from(env('WSGUARD_JWT_SECRET'), 'base64');
const KID = env('WSGUARD_JWT_KID');
const AUD = env('WSGUARD_JWT_AUD');
const ISS = env('WSGUARD_JWT_ISS');
const API_KEY = env('WSGUARD_API_KEY'); // disconnect:user:*
const CONTROL = env('WSGUARD_CONTROL'); // the Go test's fault switch

const b64url = (b) => Buffer.from(b).toString('base64url');

// jwt signs an HS256 token for sub that ends in seconds.
function jwt(sub, seconds, secret = SECRET) {
  const now = Math.floor(Date.now() / 1000);
  const h = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: KID }));
  const p = b64url(JSON.stringify({ sub, aud: AUD, iss: ISS, iat: now, exp: now + seconds }));
  const sig = createHmac('sha256', secret).update(h + '.' + p).digest('base64url');
  return h + '.' + p + '.' + sig;
}

const unique = (prefix) => prefix + '-' + randomBytes(4).toString('hex');

const clients = [];
after(() => clients.forEach((c) => c.close()));

// open makes a client for sub with a JWT credential and fast backoff.
function open(sub, opts = {}) {
  const calls = { token: 0 };
  const c = new Client(WS_URL, {
    credential: { token: async () => { calls.token++; return jwt(sub, 3600); } },
    backoff: { min: 50, max: 400 },
    ...opts
  });
  c.calls = calls;
  c.errors = [];
  c.on('error', (e) => c.errors.push(e));
  clients.push(c);
  return c;
}

async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const connected = (c) => until('connected', () => c.state === 'connected');

// disconnect asks the service API to close every socket of user (4001).
async function disconnect(user) {
  const r = await fetch(HTTP_URL + '/api/v1/disconnect', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user })
  });
  assert.equal(r.status, 200, 'disconnect ' + user + ': ' + (await r.text()));
}

async function control(action) {
  const r = await fetch(CONTROL + '/' + action, { method: 'POST' });
  assert.equal(r.status, 200, 'control ' + action);
}

// recorder returns a WebSocket class that keeps every frame the client sends.
function recorder(Base = globalThis.WebSocket) {
  const frames = [];
  class Recording extends Base {
    send(d) {
      frames.push(JSON.parse(d));
      super.send(d);
    }
  }
  return { frames, WebSocket: Recording };
}

// gate holds a credential function until opened.
function gate() {
  let open;
  const g = { closed: false, promise: Promise.resolve() };
  g.close = () => { g.closed = true; g.promise = new Promise((r) => { open = r; }); };
  g.open = () => { g.closed = false; open(); };
  return g;
}

function subscribeCollecting(c, channel, opts = {}) {
  const got = [];
  const recovers = [];
  const sub = c.subscribe(channel, {
    ...opts,
    onMessage: (m) => got.push(m),
    onRecover: (r) => recovers.push(r)
  });
  return { sub, got, recovers };
}

test('reconnects after the server drops the socket, with a fresh credential', async () => {
  const sub = unique('drop');
  const c = open(sub);
  const states = [];
  c.on('state', (s) => states.push(s));
  await connected(c);
  const room = unique('room:drop');
  const { sub: s, got } = subscribeCollecting(c, room);
  await s.ready;
  await disconnect(sub);
  await until('the 4001 error', () => c.errors.some((e) => e.closeCode === 4001));
  const e = c.errors.find((x) => x.closeCode === 4001);
  assert.ok(e instanceof WsguardError);
  assert.equal(e.code, 'session_ended');
  await until('reconnected', () => c.state === 'connected' && c.calls.token >= 2);
  assert.deepEqual(states.slice(0, 4), ['connecting', 'connected', 'disconnected', 'connecting']);
  // The subscription came back by itself.
  const { offset } = await c.publish(room, { text: 'after' });
  await until('own message', () => got.some((m) => m.offset === offset));
  assert.equal(got.filter((m) => m.data.text === 'after').length, 1);
});

test('resumes every channel with since: the missed messages, in order, once', async () => {
  const reader = unique('reader');
  const g = gate();
  const rec = recorder();
  const a = new Client(WS_URL, {
    credential: { token: async () => { await g.promise; return jwt(reader, 3600); } },
    backoff: { min: 50, max: 400 },
    WebSocket: rec.WebSocket
  });
  clients.push(a);
  const b = open(unique('writer'));
  const room = unique('room:resume');
  const other = unique('room:resume2');
  const one = subscribeCollecting(a, room);
  const two = subscribeCollecting(a, other);
  await one.sub.ready;
  await two.sub.ready;
  const first = await b.publish(room, { text: 'm1' });
  await until('m1', () => one.got.length === 1);
  g.close();
  await disconnect(reader);
  await until('disconnected', () => a.state !== 'connected');
  for (const t of ['m2', 'm3', 'm4']) await b.publish(room, { text: t });
  await b.publish(other, { text: 'o1' });
  g.open();
  await until('the replay', () => one.got.length === 4 && two.got.length === 1);
  assert.deepEqual(one.got.map((m) => m.data.text), ['m1', 'm2', 'm3', 'm4']);
  assert.deepEqual(one.got.map((m) => m.offset), [first.offset, first.offset + 1, first.offset + 2, first.offset + 3]);
  assert.deepEqual(one.recovers, [{ recovered: true, offset: first.offset + 3 }]);
  assert.equal(two.recovers[0].recovered, true);
  const subs = rec.frames.filter((f) => f.op === 'subscribe' && f.channel === room);
  assert.deepEqual(subs.map((f) => f.since), [undefined, first.offset]);
  // Live messages keep coming after the replay, with no duplicate.
  await b.publish(room, { text: 'm5' });
  await until('m5', () => one.got.length === 5);
  assert.equal(new Set(one.got.map((m) => m.offset)).size, 5);
});

test('reports recovered:false when the gap is older than retention', async () => {
  const reader = unique('late');
  const g = gate();
  const a = new Client(WS_URL, {
    credential: { token: async () => { await g.promise; return jwt(reader, 3600); } },
    backoff: { min: 50, max: 400 }
  });
  clients.push(a);
  const b = open(unique('busy'));
  const room = unique('short:r'); // history_size 3 in the Go test's config
  const s = subscribeCollecting(a, room);
  await s.sub.ready;
  await b.publish(room, { text: 'k1' });
  await until('k1', () => s.got.length === 1);
  g.close();
  await disconnect(reader);
  await until('disconnected', () => a.state !== 'connected');
  for (let i = 2; i <= 7; i++) await b.publish(room, { text: 'k' + i });
  g.open();
  await until('the recover report', () => s.recovers.length === 1);
  assert.equal(s.recovers[0].recovered, false);
  assert.equal(s.got.length, 1, 'nothing replayed across a gap the server no longer has');
  // The app reloads history: what retention kept.
  const { messages } = await a.history(room, { limit: 50 });
  assert.deepEqual(messages.map((m) => m.data.text), ['k5', 'k6', 'k7']);
  await b.publish(room, { text: 'k8' });
  await until('k8 live', () => s.got.length === 2);
  assert.equal(s.got[1].data.text, 'k8');
});

test('resumes without the history right: from the head, recovered:false, still subscribed', async () => {
  const reader = unique('nohist');
  const g = gate();
  const a = new Client(WS_URL, {
    credential: { token: async () => { await g.promise; return jwt(reader, 3600); } },
    backoff: { min: 50, max: 400 }
  });
  clients.push(a);
  a.errors = [];
  a.on('error', (e) => a.errors.push(e));
  const b = open(unique('nohist-writer'));
  const room = unique('nohist:r');
  const s = subscribeCollecting(a, room);
  await s.sub.ready;
  await b.publish(room, { text: 'h1' });
  await until('h1', () => s.got.length === 1);
  g.close();
  await disconnect(reader);
  await until('disconnected', () => a.state !== 'connected');
  await b.publish(room, { text: 'h2 (missed)' });
  g.open();
  await until('the recover report', () => s.recovers.length === 1);
  assert.equal(s.recovers[0].recovered, false);
  await connected(a);
  await a.ping(); // the resubscribe without since was answered before this
  await b.publish(room, { text: 'h3' });
  await until('h3 live', () => s.got.length === 2);
  assert.deepEqual(s.got.map((m) => m.data.text), ['h1', 'h3']);
  assert.ok(!a.errors.some((e) => e.code === 'forbidden'), 'the subscription was not dropped');
});

test('calls token again on expiring and refreshes the connection', async () => {
  const sub = unique('short-lived');
  let calls = 0;
  const c = new Client(WS_URL, {
    // The first token ends in 2 s; the server says expiring at once.
    credential: { token: async () => (++calls === 1 ? jwt(sub, 2) : jwt(sub, 3600)) },
    backoff: { min: 50, max: 400 }
  });
  clients.push(c);
  const errors = [];
  const expiring = [];
  const refreshed = [];
  c.on('error', (e) => errors.push(e));
  c.on('expiring', (x) => expiring.push(x));
  c.on('refreshed', (x) => refreshed.push(x));
  await until('refreshed', () => refreshed.length === 1);
  assert.ok(expiring[0].in <= 2);
  assert.equal(calls, 2);
  assert.ok(Date.parse(refreshed[0].expires) > Date.now() + 3000 * 1000);
  // Past the first token's end: still the same connection.
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(c.state, 'connected');
  assert.deepEqual(errors.map((e) => e.code), []);
  await c.ping();
  assert.equal(calls, 2, 'no reconnect');
  // The attacker's side: a token for someone else does not take over.
  await assert.rejects(c.request('refresh', { token: jwt(unique('someone-else'), 3600) }), { name: 'WsguardError', code: 'forbidden' });
});

test('retries a publish whose answer was lost, stored exactly once', async () => {
  const sub = unique('retry');
  const frames = [];
  let lose = true;
  // A socket that loses the first publish answer and drops the connection,
  // as a network would between the server storing and the client hearing.
  class Lossy extends WebSocket {
    send(d) {
      frames.push(JSON.parse(d));
      super.send(d);
    }
    set onmessage(fn) {
      super.onmessage = (e) => {
        const m = JSON.parse(e.data);
        const req = frames.find((f) => f.id === m.id && f.op === 'publish');
        if (lose && req && m.ok) {
          lose = false;
          this.close(4000, 'lost');
          return;
        }
        fn(e);
      };
    }
    get onmessage() {
      return super.onmessage;
    }
  }
  const c = open(sub, { WebSocket: Lossy });
  const room = unique('room:once');
  const s = subscribeCollecting(c, room);
  await s.sub.ready;
  const r = await c.publish(room, { text: 'exactly once' });
  const pubs = frames.filter((f) => f.op === 'publish');
  assert.equal(pubs.length, 2, 'sent again after the reconnect');
  assert.equal(pubs[0].cid, pubs[1].cid);
  assert.equal(r.cid, pubs[0].cid);
  assert.ok(c.calls.token >= 2);
  const { messages } = await c.history(room);
  assert.deepEqual(messages.map((m) => [m.offset, m.data.text]), [[r.offset, 'exactly once']]);
  await until('the push', () => s.got.length === 1);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(s.got.length, 1, 'delivered once');
});

test('surfaces every error code as a WsguardError matched to its request', async (t) => {
  const me = unique('err');
  const c = open(me);
  await connected(c);
  const is = (code, extra = {}) => (e) => {
    assert.ok(e instanceof WsguardError, 'a WsguardError: ' + e);
    assert.equal(e.code, code, e.message);
    for (const [k, v] of Object.entries(extra)) assert.equal(e[k], v, k);
    return true;
  };

  await t.test('bad_request', async () => {
    await assert.rejects(c.request('subscribe', { channel: 'no channel' }), is('bad_request', { op: 'subscribe' }));
    const refused = [];
    const sub = c.subscribe('room:..', { onError: (e) => refused.push(e) });
    await assert.rejects(sub.ready, is('bad_request'));
    assert.equal(refused.length, 1);
  });
  await t.test('forbidden', async () => {
    await assert.rejects(c.publish('user:' + unique('other'), { text: 'x' }), is('forbidden', { op: 'publish' }));
    await assert.rejects(c.history('nope:x'), is('forbidden', { op: 'history' }));
  });
  await t.test('not_found', async () => {
    await assert.rejects(c.request('unsubscribe', { channel: 'room:never' }), is('not_found', { op: 'unsubscribe' }));
  });
  await t.test('rate_limited, each answer matched by id', async () => {
    const d = open(unique('fast'));
    await connected(d);
    const results = await Promise.allSettled(Array.from({ length: 25 }, (_, i) => d.request('presence', { channel: 'room:rate' + i })));
    const limited = results.filter((r) => r.status === 'rejected');
    assert.ok(limited.length > 0 && limited.length < 25, limited.length + ' rate limited');
    for (const r of limited) is('rate_limited', { op: 'presence' })(r.reason);
    // The ones answered are the requests asked: channel by channel.
    results.forEach((r, i) => { if (r.status === 'fulfilled') assert.deepEqual(r.value, { users: [] }); else assert.equal(r.reason.channel, 'room:rate' + i); });
  });
  await t.test('too_large, before sending and from the server (1009)', async () => {
    await assert.rejects(c.publish('room:big', { text: 'x'.repeat(70000) }), is('too_large'));
    const big = open(unique('big'), { maxMessageBytes: 1 << 20 });
    await connected(big);
    await assert.rejects(big.publish('room:big', { text: 'x'.repeat(70000) }), is('too_large', { closeCode: 1009 }));
    assert.ok(big.errors.some((e) => e.closeCode === 1009));
    await connected(big);
    await big.ping();
  });
  await t.test('unavailable, then the retry with the same cid', async () => {
    await control('lock');
    let locked = true;
    try {
      await assert.rejects(c.publish('room:store', { text: 'x' }, { cid: 'same-cid', timeout: 30000 }), is('unavailable'));
      await control('unlock');
      locked = false;
      const r = await c.publish('room:store', { text: 'x' }, { cid: 'same-cid' });
      assert.ok(r.offset >= 1);
    } finally {
      if (locked) await control('unlock');
    }
  });
  await t.test('timeout', async () => {
    const never = new Client(WS_URL, { credential: { ticket: () => new Promise(() => {}) } });
    clients.push(never);
    await assert.rejects(never.ping({ timeout: 200 }), is('timeout', { op: 'ping' }));
  });
  await t.test('closed', async () => {
    const d = open(unique('closing'));
    const p = d.ping();
    d.close();
    await assert.rejects(p, is('closed'));
    await assert.rejects(d.ping(), is('closed'));
  });
  await t.test('policy: ten bad requests close 1008, and the client comes back', async () => {
    const d = open(unique('sloppy'));
    await connected(d);
    await Promise.allSettled(Array.from({ length: 10 }, () => d.request('nonsense', {})));
    await until('the 1008 close', () => d.errors.some((e) => e.closeCode === 1008));
    assert.equal(d.errors.find((e) => e.closeCode === 1008).code, 'policy');
    await connected(d);
    await d.ping();
  });
  await t.test('rate_limited close (4008): twenty refusals in a row, then back with backoff', async () => {
    const d = open(unique('flood'));
    await connected(d);
    const flood = await Promise.allSettled(Array.from({ length: 40 }, () => d.request('unsubscribe', { channel: 'room:x' })));
    // not_found for the first ten (the bucket's burst), rate_limited after;
    // those cut off by the close resolve, as an unsubscribe ends with its socket.
    const codes = flood.filter((r) => r.status === 'rejected').map((r) => r.reason.code);
    assert.ok(codes.filter((c) => c === 'rate_limited').length >= 20, codes.join(' '));
    await until('the 4008 close', () => d.errors.some((e) => e.closeCode === 4008));
    assert.equal(d.errors.find((e) => e.closeCode === 4008).code, 'rate_limited');
    await connected(d);
    await new Promise((r) => setTimeout(r, 1000)); // the bucket refills
    await d.ping();
  });
  await t.test('a refused credential', async () => {
    const forged = new Client(WS_URL, {
      credential: { token: () => jwt('mallory', 3600, Buffer.from('not the secret')) },
      backoff: { min: 1000, max: 1000 }
    });
    clients.push(forged);
    const errs = [];
    forged.on('error', (e) => errs.push(e));
    await until('the refusal', () => errs.length > 0);
    is('unauthorized', { status: 401 })(errs[0]);
    assert.notEqual(forged.state, 'connected');
    forged.close();
    const bogus = new Client(WS_URL, { credential: { ticket: () => 'not-a-ticket' }, backoff: { min: 1000, max: 1000 } });
    clients.push(bogus);
    const errs2 = [];
    bogus.on('error', (e) => errs2.push(e));
    await until('the refused handshake', () => errs2.length > 0);
    is('handshake_failed')(errs2[0]);
    bogus.close();
  });
});

test('presence and history', async () => {
  const room = unique('room:who');
  const ann = unique('ann');
  const bob = unique('bob');
  const a = open(ann);
  const b = open(bob);
  const joins = [];
  const sa = a.subscribe(room, { onPresence: (p) => joins.push(...p.join) });
  await sa.ready;
  assert.deepEqual(await a.presence(room), [ann]);
  await b.subscribe(room).ready;
  await until('bob joins', () => joins.includes(bob));
  assert.deepEqual(await a.presence(room), [ann, bob].sort());
  for (let i = 1; i <= 3; i++) await b.publish(room, { n: i });
  const { messages, more } = await a.history(room, { limit: 2 });
  assert.deepEqual(messages.map((m) => m.data.n), [2, 3]);
  assert.equal(more, false);
  const older = await a.history(room, { before: messages[0].offset });
  assert.deepEqual(older.messages.map((m) => [m.data.n, m.from]), [[1, bob]]);
  await sa.unsubscribe();
  assert.deepEqual(await b.presence(room), [bob]);
});
