"""An echo server on the python3-websockets defaults, for wsguard check's tests.

It listens on a loopback port the OS picks and prints that port on stdout,
then echoes every message until stdin closes or it is killed.
"""
import asyncio
import sys

import websockets


async def echo(ws, path=None):
    async for msg in ws:
        await ws.send(msg)


async def main():
    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


asyncio.run(main())
