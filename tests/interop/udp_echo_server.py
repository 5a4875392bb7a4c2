#!/usr/bin/env python3
"""The asyncio documentation's UDP echo server (asyncio-protocol.html,
"UDP Echo Server"), with --host/--port.

Prints `Starting UDP server`, then per datagram `Received '...' from (...)`
and `Send '...' to (...)`, and echoes it. Runs until SIGINT (the
documentation's example stops after an hour), then exits 0. The
"Serving on" line goes to stderr so that stdout holds exactly the lines of
the documentation's example output.
"""
import argparse
import asyncio
import sys


class EchoServerProtocol:
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        message = data.decode()
        print('Received %r from %s' % (message, addr), flush=True)
        print('Send %r to %s' % (message, addr), flush=True)
        self.transport.sendto(data, addr)


async def main(host, port):
    print("Starting UDP server", flush=True)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: EchoServerProtocol(),
        local_addr=(host, port))
    print(f'Serving on {transport.get_extra_info("sockname")}',
          file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        transport.close()


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=9999)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.host, args.port))
    except KeyboardInterrupt:
        pass
