// A WebSocket backend on the `ws` npm package that knows nothing of wsguard
// except how to verify the identity headers, as docs/PROXY.md tells a
// backend to. usage: node upstream.js SECRET_FILE
//
// It prints "listening PORT", then "open USER" per accepted socket. A
// handshake whose identity headers do not verify is refused with 403. An
// accepted socket first sends one JSON text message describing what the
// handshake carried, then echoes every message with its type unchanged;
// "close CODE" closes with CODE.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const { WebSocketServer } = require('ws');

let secret = fs.readFileSync(process.argv[2]);
if (secret[secret.length - 1] === 0x0a) secret = secret.subarray(0, secret.length - 1);

const names = ['x-wsguard-user', 'x-wsguard-roles', 'x-wsguard-credential', 'x-wsguard-expires', 'x-wsguard-timestamp'];

function verify(req) {
  const values = names.map((n) => req.headers[n]);
  const sig = req.headers['x-wsguard-signature'];
  if (values.some((v) => typeof v !== 'string') || typeof sig !== 'string') return null;
  const want = crypto.createHmac('sha256', secret).update(values.join('\n')).digest();
  const got = Buffer.from(sig, 'hex');
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return null;
  if (Math.abs(Date.now() / 1000 - Number(values[4])) > 30) return null;
  return { user: values[0], roles: values[1], credential: values[2], expires: values[3] };
}

const server = http.createServer();
const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 1 << 20,
  handleProtocols: (protocols) => (protocols.has('chat.v1') ? 'chat.v1' : false),
});

server.on('upgrade', (req, socket, head) => {
  const ident = verify(req);
  if (!ident) {
    console.log('refused');
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    console.log('open ' + ident.user);
    const rawUser = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i].toLowerCase() === 'x-wsguard-user') rawUser.push(req.rawHeaders[i + 1]);
    }
    ws.send(JSON.stringify(Object.assign({}, ident, {
      user_headers: rawUser,
      authorization: req.headers.authorization || '',
      cookie: req.headers.cookie || '',
      subprotocol: ws.protocol,
      path: req.url,
    })));
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString().startsWith('close ')) {
        ws.close(Number(data.toString().split(' ')[1]), 'asked to');
        return;
      }
      ws.send(data, { binary: isBinary });
    });
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log('listening ' + server.address().port);
});
