// Type-checked (tsc --noEmit) use of the client's surface as its docs show
// it; it is never run.
import { Client, WsguardError, type Message, type ConnectionState } from "../wsguard.js";

export async function usage(): Promise<void> {
  const c = new Client("wss://chat.example.com/ws", { credential: "session" });
  const t = new Client("wss://chat.example.com/ws", {
    credential: { token: async () => "<JWT>" },
    timeout: 5000,
    backoff: { min: 250, max: 10000 },
  });
  new Client("/ws", { credential: { ticket: async () => "ticket" }, WebSocket: globalThis.WebSocket });
  const off = c.on("state", (s: ConnectionState) => { void s; });
  off();
  c.on("error", (e) => {
    const code: string = e.code;
    const close: number | undefined = e.closeCode;
    void code; void close;
  });
  c.on("expiring", (x) => { const n: number = x.in; void n; });
  const sub = c.subscribe<{ text: string }>("room:lobby", {
    since: 41,
    onMessage: (m: Message<{ text: string }>) => { const s: string = m.data.text; void s; },
    onRecover: ({ recovered }) => { if (!recovered) void c.history("room:lobby", { limit: 50 }); },
    onPresence: (p) => { void p.join; },
    onError: (e: WsguardError) => { void e.code; },
  });
  const ready = await sub.ready;
  void ready.recovered;
  const { offset, cid } = await c.publish("room:lobby", { text: "hi" }, { cid: "c-1" });
  void offset; void cid;
  const { messages, more } = await c.history<{ text: string }>("room:lobby", { limit: 50, before: 100 });
  void messages[0]?.data.text; void more;
  const members: string[] = await c.presence("room:lobby");
  void members;
  await c.ping();
  try {
    await c.request("unsubscribe", { channel: "room:none" });
  } catch (e) {
    if (e instanceof WsguardError && e.code === "not_found") { /* expected */ }
  }
  await sub.unsubscribe();
  c.close();
  t.close();
}
