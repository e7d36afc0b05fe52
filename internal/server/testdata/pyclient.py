"""A wsguard subscriber written with Python's websockets library, default
keepalive and all: it prints "subscribed", then the number in each message
of the channel, in order, then "done" after the count it was given.

usage: pyclient.py URL ORIGIN COOKIE CSRF_TOKEN CA_FILE CHANNEL COUNT
"""
import asyncio
import json
import ssl
import sys

import websockets


async def main():
    url, origin, cookie, token, ca, channel, count = sys.argv[1:8]
    ctx = ssl.create_default_context(cafile=ca)
    async with websockets.connect(
        url,
        ssl=ctx,
        origin=origin,
        extra_headers={"Cookie": cookie},
        subprotocols=["wsguard.v1", "wsguard.csrf." + token],
        max_size=1 << 20,
    ) as ws:
        await ws.send(json.dumps({"id": 1, "op": "subscribe", "channel": channel}))
        reply = json.loads(await ws.recv())
        if not reply.get("ok"):
            sys.exit("subscribe refused: %r" % reply)
        print("subscribed", flush=True)
        seen = 0
        while seen < int(count):
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame.get("push") != "message":
                continue
            seen += 1
            print(frame["data"]["n"], flush=True)
        print("done", flush=True)


asyncio.run(main())
