"""A WebSocket backend written with Python's websockets library (Debian's
python3-websockets) that knows nothing of wsguard except how to verify the
identity headers, as docs/PROXY.md tells a backend to.

usage: upstream.py SECRET_FILE

It listens on a loopback port, prints "listening PORT", and then one line
per handshake: "refused REASON" or "open USER". A handshake whose identity
headers do not verify is refused with 403. An accepted socket first sends
one JSON text message describing what the handshake carried, then echoes
every message back with its type unchanged, except these text commands:
  "close CODE"  closes with CODE
  "big N"       sends N bytes of text
  "spam N"      sends N small text messages
  "stall"       stops reading for 60 s
"""
import asyncio
import hashlib
import hmac
import http
import json
import sys
import time

import websockets


def load_secret(path):
    with open(path, "rb") as f:
        b = f.read()
    if b.endswith(b"\n"):
        b = b[:-1]
    return b


SECRET = load_secret(sys.argv[1])
NAMES = ["X-Wsguard-User", "X-Wsguard-Roles", "X-Wsguard-Credential",
         "X-Wsguard-Expires", "X-Wsguard-Timestamp"]


def verify(headers):
    """Returns the identity dict, or raises ValueError saying why not."""
    for n in NAMES + ["X-Wsguard-Signature"]:
        if len(headers.get_all(n)) != 1:
            raise ValueError("header %s missing or repeated" % n)
    values = [headers[n] for n in NAMES]
    want = hmac.new(SECRET, "\n".join(values).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, headers["X-Wsguard-Signature"]):
        raise ValueError("bad signature")
    if abs(time.time() - int(values[4])) > 30:
        raise ValueError("stale timestamp")
    return {"user": values[0], "roles": values[1], "credential": values[2],
            "expires": values[3]}


async def process_request(path, headers):
    try:
        verify(headers)
    except ValueError as e:
        print("refused", str(e).replace(" ", "_"), flush=True)
        return (http.HTTPStatus.FORBIDDEN, [], b"identity headers do not verify\n")
    return None


async def handler(ws, path=None):
    ident = verify(ws.request_headers)
    print("open", ident["user"], flush=True)
    hello = dict(ident)
    hello["user_headers"] = ws.request_headers.get_all("X-Wsguard-User")
    hello["wsguard_headers"] = sorted(k for k in ws.request_headers.keys() if k.lower().startswith("x-wsguard-"))
    hello["authorization"] = ws.request_headers.get("Authorization", "")
    hello["cookie"] = ws.request_headers.get("Cookie", "")
    hello["subprotocol"] = ws.subprotocol or ""
    hello["path"] = ws.path
    await ws.send(json.dumps(hello))
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("close "):
                await ws.close(int(msg.split()[1]), "asked to")
                return
            if isinstance(msg, str) and msg.startswith("big "):
                await ws.send("x" * int(msg.split()[1]))
                continue
            if isinstance(msg, str) and msg.startswith("spam "):
                for i in range(int(msg.split()[1])):
                    await ws.send("spam %d %s" % (i, "z" * 1000))
                continue
            if msg == "stall":
                await asyncio.sleep(60)
                continue
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    print("closed", ident["user"], ws.close_code, flush=True)


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, process_request=process_request,
                                subprotocols=["chat.v2", "chat.v1"], max_size=1 << 20,
                                max_queue=4) as server:
        port = server.sockets[0].getsockname()[1]
        print("listening", port, flush=True)
        await asyncio.Future()


asyncio.run(main())
