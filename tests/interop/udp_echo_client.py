#!/usr/bin/env python3
"""The asyncio documentation's UDP echo client (asyncio-protocol.html,
"UDP Echo Client"), with --host/--port.

Prints `Send: Hello World!`, `Received: Hello World!`, `Close the socket`,
`Connection closed`. As in the documentation, it waits forever if no server
answers (the interop driver bounds it).
"""
import argparse
import asyncio


class EchoClientProtocol:
    def __init__(self, message, on_con_lost):
        self.message = message
        self.on_con_lost = on_con_lost
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        print('Send:', self.message, flush=True)
        self.transport.sendto(self.message.encode())

    def datagram_received(self, data, addr):
        print("Received:", data.decode(), flush=True)
        print("Close the socket", flush=True)
        self.transport.close()

    def error_received(self, exc):
        print('Error received:', exc, flush=True)

    def connection_lost(self, exc):
        print("Connection closed", flush=True)
        self.on_con_lost.set_result(True)


async def main(host, port):
    loop = asyncio.get_running_loop()
    on_con_lost = loop.create_future()
    message = "Hello World!"
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: EchoClientProtocol(message, on_con_lost),
        remote_addr=(host, port))
    try:
        await on_con_lost
    finally:
        transport.close()


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=9999)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
