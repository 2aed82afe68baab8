#!/usr/bin/python3
"""delay_proxy.py - a TCP proxy on 127.0.0.1 that holds every reply of the server behind it for
DELAY ms before passing it on: in front of smtp-sink it makes a far side whose every SMTP
command (greeting, EHLO, MAIL, RCPT, DATA, end of data, ...) answers DELAY ms late, as a link
with a round trip of DELAY ms would. The client's bytes go through at once.

usage: delay_proxy.py UPSTREAM_PORT DELAY_MS   (prints the port it listens on, then serves
until SIGTERM; run by bench/smtp_throughput.py --delay-ms)"""
import asyncio
import signal
import socket
import sys


async def pipe(reader, writer, delay):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main():
    upstream, delay = int(sys.argv[1]), float(sys.argv[2]) / 1000.0

    async def client(cr, cw):
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            cw.close()
            return
        for w in (cw, uw):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(pipe(cr, uw, 0), pipe(ur, cw, delay))

    srv = await asyncio.start_server(client, "127.0.0.1", 0, backlog=256)
    print(srv.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with srv:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
