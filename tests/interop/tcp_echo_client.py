#!/usr/bin/env python3
"""The asyncio documentation's TCP echo client (asyncio-protocol.html,
"TCP Echo Client"), with --host/--port/--message."""
import argparse
import asyncio


class EchoClientProtocol(asyncio.Protocol):
    def __init__(self, message, on_con_lost):
        self.message = message
        self.on_con_lost = on_con_lost

    def connection_made(self, transport):
        transport.write(self.message.encode())
        print('Data sent: {!r}'.format(self.message), flush=True)

    def data_received(self, data):
        print('Data received: {!r}'.format(data.decode()), flush=True)

    def connection_lost(self, exc):
        print('The server closed the connection', flush=True)
        self.on_con_lost.set_result(True)


async def main(host, port, message):
    loop = asyncio.get_running_loop()
    on_con_lost = loop.create_future()
    transport, protocol = await loop.create_connection(
        lambda: EchoClientProtocol(message, on_con_lost), host, port)
    # Wait until the protocol signals that the connection is lost and
    # close the transport.
    try:
        await on_con_lost
    finally:
        transport.close()


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8888)
    parser.add_argument('--message', default='Hello World!')
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, args.message))
