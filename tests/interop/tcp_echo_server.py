#!/usr/bin/env python3
"""The asyncio documentation's TCP echo server (asyncio-protocol.html,
"TCP Echo Server"), with --host/--port.

Prints, per connection: Connection from <peer> / Data received: '...' /
Send: '...' / Close the client socket. Runs until SIGINT, then exits 0.
The "Serving on" line goes to stderr so that stdout holds exactly the lines
of the documentation's example output.
"""
import argparse
import asyncio
import sys


class EchoServerProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        peername = transport.get_extra_info('peername')
        print('Connection from {}'.format(peername), flush=True)
        self.transport = transport

    def data_received(self, data):
        message = data.decode()
        print('Data received: {!r}'.format(message), flush=True)

        print('Send: {!r}'.format(message), flush=True)
        self.transport.write(data)

        print('Close the client socket', flush=True)
        self.transport.close()


async def main(host, port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoServerProtocol, host, port)
    addrs = ', '.join(str(sock.getsockname()) for sock in server.sockets)
    print(f'Serving on {addrs}', file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8888)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.host, args.port))
    except KeyboardInterrupt:
        pass
