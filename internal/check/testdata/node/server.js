// An echo server on the defaults of the npm package ws, for wsguard check's
// tests. It listens on a loopback port the OS picks, prints that port on
// stdout, and echoes every message until stdin closes.
const { WebSocketServer } = require("ws");

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 }, () => {
  process.stdout.write(wss.address().port + "\n");
});
wss.on("connection", (ws) => {
  // As the ws README does: without a listener, a protocol error on one
  // socket (invalid UTF-8, too large) would end the process.
  ws.on("error", () => {});
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
