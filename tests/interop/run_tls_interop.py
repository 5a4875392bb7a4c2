#!/usr/bin/env python3
"""Interop test: shardwire's TLS echo demos against Python's ssl / asyncio
and the openssl command line.

Certificates are made at test time with the `openssl` command into a
temporary directory: a CA, a second CA nobody trusts, a server certificate
for localhost / 127.0.0.1, client certificates from both CAs, a server
certificate for another name. Without the openssl command the test prints
why and exits 77 (ctest: skipped).

Runs, each bounded in time, on loopback only:
  1. Python asyncio TLS client -> tls_echo_server, over TCP and Unix
  2. tls_echo_client -> Python asyncio TLS echo server, over TCP and Unix
  3. mutual TLS: tls_echo_server --ca with a Python client with a client
     certificate (echoed), without one (refused), with one from another CA
     (refused); tls_echo_client --cert/--key against it
  4. `openssl s_client -verify_return_error` -> tls_echo_server;
     tls_echo_client -> `openssl s_server -rev`
  5. STARTTLS: tls_echo_client --starttls -> a Python server upgrading with
     loop.start_tls; a Python client upgrading with StreamWriter.start_tls ->
     tls_echo_server --starttls; a pipelined client (ssl.MemoryBIO, the
     ClientHello in the same write as "STARTTLS\\r\\n", and split right
     behind it) -> tls_echo_server --starttls: no byte lost
  6. bad input: a plaintext client on the TLS port (logged, others still
     served), a wrong first line in STARTTLS mode, tls_echo_client trusting
     another CA (exit 1, "unknown_ca"), host name mismatches both ways
and checks the echoed bytes and the demos' printed lines (the same as
tcp_echo_server's and tcp_echo_client's). Servers stop on SIGINT with exit 0.

Usage: run_tls_interop.py --server BIN --client BIN
"""
import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'support'))
from harness import LineQueue, check, failures, free_port  # noqa: E402

STEP_TIMEOUT = 20.0  # any single program run or exchange
STOP_TIMEOUT = 5.0   # SIGINT -> exit
SKIP = 77            # ctest SKIP_RETURN_CODE

CLIENT_LINES = [
    "Data sent: 'Hello World!'",
    "Data received: 'Hello World!'",
    "The server closed the connection",
]

SERVER_LINE_PATTERNS = [
    r"Connection from .+",
    r"Data received: '(.*)'",
    r"Send: '(.*)'",
    r"Close the client socket",
]
TCP_PEER = r"Connection from \('127\.0\.0\.1', (\d+)\)"


# -- certificates --------------------------------------------------------------


def openssl(*args, cwd):
    subprocess.run(['openssl', *args], cwd=cwd, check=True,
                   capture_output=True, timeout=60)


class Pki:
    """Certificates made with the openssl command in `dir`."""

    def __init__(self, dir):
        self.dir = dir
        self._ca('ca')
        self._ca('otherca')
        self.server = self._issue('ca', 'server',
                                  'DNS:localhost,IP:127.0.0.1', 'serverAuth')
        self.client = self._issue('ca', 'client', 'DNS:client', 'clientAuth')
        self.other_client = self._issue('otherca', 'other-client',
                                        'DNS:client', 'clientAuth')
        self.wrong_name = self._issue('ca', 'wrong-name',
                                      'DNS:other.example', 'serverAuth')
        self.ca = self.path('ca.pem')
        self.otherca = self.path('otherca.pem')

    def path(self, name):
        return os.path.join(self.dir, name)

    def _ca(self, name):
        openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout',
                f'{name}.key', '-out', f'{name}.pem', '-days', '2', '-subj',
                f'/CN=shardwire test {name}', '-addext',
                'basicConstraints=critical,CA:TRUE', '-addext',
                'keyUsage=critical,keyCertSign,cRLSign', cwd=self.dir)

    def _issue(self, ca, name, san, usage):
        openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout',
                f'{name}.key', '-out', f'{name}.csr', '-subj', f'/CN={name}',
                cwd=self.dir)
        with open(self.path(f'{name}.ext'), 'w') as f:
            f.write(f'subjectAltName={san}\nbasicConstraints=CA:FALSE\n'
                    f'keyUsage=critical,digitalSignature,keyEncipherment\n'
                    f'extendedKeyUsage={usage}\n')
        openssl('x509', '-req', '-in', f'{name}.csr', '-CA', f'{ca}.pem',
                '-CAkey', f'{ca}.key', '-CAcreateserial', '-out',
                f'{name}.pem', '-days', '2', '-extfile', f'{name}.ext',
                cwd=self.dir)
        return self.path(f'{name}.pem'), self.path(f'{name}.key')


# -- processes -----------------------------------------------------------------


def show(name, lines):
    for line in lines:
        print(f'    {name}| {line}', flush=True)


class Server:
    """A demo server; its stdout and stderr lines are collected by threads.
    Always stop() it (in a finally)."""

    def __init__(self, argv):
        print('  $ ' + ' '.join(argv), flush=True)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._out = LineQueue(self.proc.stdout)
        self._err = LineQueue(self.proc.stderr)
        self.stdout = self._out.lines
        self.stderr = self._err.lines
        self.port = None

    def wait_ready(self):
        m = self._err.wait_line(r"Serving on (?:\('[^']*', (\d+)\))?",
                                STEP_TIMEOUT)
        if m and m.group(1):
            self.port = int(m.group(1))
        return m is not None

    def wait_stderr(self, pattern, timeout=STEP_TIMEOUT):
        return self._err.wait_line(pattern, timeout)

    def wait_stdout(self, pattern, timeout=STEP_TIMEOUT):
        return self._out.wait_line(pattern, timeout)

    def stop(self):
        """SIGINT; the exit code, None if it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self._out.join(STEP_TIMEOUT)
        self._err.join(STEP_TIMEOUT)
        return rc


def run(argv, timeout=STEP_TIMEOUT, stdin_text=None):
    print('  $ ' + ' '.join(argv), flush=True)
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout, input=stdin_text,
                              stdin=None if stdin_text is not None
                              else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        def text(x):
            return x.decode(errors='replace') if isinstance(x, bytes) \
                else (x or '')
        return subprocess.CompletedProcess(argv, None, text(e.stdout),
                                           text(e.stderr))


def check_server_lines(lines, who, sent='Hello World!', tcp=True):
    ok = check(len(lines) == len(SERVER_LINE_PATTERNS),
               f'{who} printed {len(SERVER_LINE_PATTERNS)} lines')
    ok = ok and all(re.fullmatch(p, l)
                    for p, l in zip(SERVER_LINE_PATTERNS, lines))
    ok = ok and re.fullmatch(SERVER_LINE_PATTERNS[1], lines[1]).group(1) \
        == sent
    if ok and tcp:
        ok = re.fullmatch(TCP_PEER, lines[0]) is not None
    check(ok, f"{who} printed the documentation's lines")


def stopped(srv, who):
    rc = srv.stop()
    show('server', srv.stdout)
    show('server-err', srv.stderr)
    check(rc == 0, f'{who} exited 0 on SIGINT (rc={rc})')
    return rc


# -- Python peers --------------------------------------------------------------


def client_context(pki, cafile=None, cert=None):
    ctx = ssl.create_default_context(cafile=cafile or pki.ca)
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def server_context(cert, cafile=None):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def _echo_exchange(reader, writer, message):
    writer.write(message)
    got = b''
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        got += chunk
    writer.close()
    try:
        await writer.wait_closed()
    except (OSError, ssl.SSLError):
        pass
    return got


def python_client(ctx, port=None, unix=None, server_hostname='localhost',
                  message=b'Hello World!'):
    """asyncio's TLS client: sends, reads to EOF. Returns the bytes, or the
    exception that ended the exchange."""
    async def main():
        if unix:
            reader, writer = await asyncio.open_unix_connection(
                unix, ssl=ctx, server_hostname=server_hostname)
        else:
            reader, writer = await asyncio.open_connection(
                '127.0.0.1', port, ssl=ctx, server_hostname=server_hostname)
        return await _echo_exchange(reader, writer, message)

    try:
        return asyncio.run(asyncio.wait_for(main(), STEP_TIMEOUT))
    except Exception as e:  # noqa: BLE001 (the failure is the result)
        return e


class PythonServer:
    """An asyncio server on its own thread and loop (TCP or Unix), TLS or
    the STARTTLS line protocol. Prints the documentation's server lines
    into `lines`. Always stop() it."""

    def __init__(self, ctx, unix=None, starttls=False):
        self.ctx = ctx
        self.unix = unix
        self.starttls = starttls
        self.lines = []
        self.errors = []
        self.port = None
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(STEP_TIMEOUT):
            raise RuntimeError('Python server did not start')

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self):
        ssl_arg = None if self.starttls else self.ctx
        if self.unix:
            self._srv = await asyncio.start_unix_server(self._handle,
                                                        self.unix,
                                                        ssl=ssl_arg)
        else:
            self._srv = await asyncio.start_server(self._handle, '127.0.0.1',
                                                   0, ssl=ssl_arg)
            self.port = self._srv.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer):
        try:
            peer = writer.get_extra_info('peername')
            self.lines.append(f'Connection from {peer!r}')
            if self.starttls:
                line = await reader.readline()
                if line.rstrip(b'\r\n') != b'STARTTLS':
                    self.errors.append(f'first line {line!r}')
                    writer.close()
                    return
                writer.write(b'READY\r\n')
                await writer.drain()
                await writer.start_tls(self.ctx)
            data = await reader.read(100)
            message = data.decode()
            self.lines.append(f'Data received: {message!r}')
            self.lines.append(f'Send: {message!r}')
            writer.write(data)
            await writer.drain()
            self.lines.append('Close the client socket')
            writer.close()
            await writer.wait_closed()
        except Exception as e:  # noqa: BLE001
            self.errors.append(repr(e))

    def stop(self):
        async def close():
            self._srv.close()
            await self._srv.wait_closed()
        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(
                STEP_TIMEOUT)
        except Exception as e:  # noqa: BLE001
            self.errors.append(f'close: {e!r}')
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STEP_TIMEOUT)
        show('py-server', self.lines)
        show('py-server-err', self.errors)


# -- the cases -----------------------------------------------------------------


def case_python_client(args, pki, tmp):
    for unix in (None, os.path.join(tmp, 'tls-echo.sock')):
        how = 'Unix' if unix else 'TCP'
        print(f'[1] Python asyncio TLS client -> tls_echo_server ({how})',
              flush=True)
        where = [f'--unix={unix}'] if unix else ['--host=127.0.0.1',
                                                  '--port=0']
        srv = Server([args.server, f'--cert={pki.server[0]}',
                      f'--key={pki.server[1]}', '--shards=2', *where])
        try:
            if not check(srv.wait_ready(), 'tls_echo_server is listening'):
                continue
            got = python_client(client_context(pki), port=srv.port,
                                unix=unix)
            check(got == b'Hello World!', f'{how}: echoed over TLS ({got!r})')
        finally:
            stopped(srv, 'tls_echo_server')
        check_server_lines(srv.stdout, 'tls_echo_server', tcp=unix is None)
        if unix:
            check(not os.path.exists(unix), 'the socket file is removed')


def case_shardwire_client(args, pki, tmp):
    for unix in (None, os.path.join(tmp, 'py-echo.sock')):
        how = 'Unix' if unix else 'TCP'
        print(f'[2] tls_echo_client -> Python asyncio TLS server ({how})',
              flush=True)
        srv = PythonServer(server_context(pki.server), unix=unix)
        try:
            where = [f'--unix={unix}', '--server-hostname=localhost'] \
                if unix else ['--host=127.0.0.1', f'--port={srv.port}']
            res = run([args.client, f'--ca={pki.ca}', *where])
        finally:
            srv.stop()
        show('client', res.stdout.splitlines())
        show('client-err', res.stderr.splitlines())
        check(res.returncode == 0, f'{how}: tls_echo_client exit code 0 '
              f'(rc={res.returncode})')
        check(res.stdout.splitlines() == CLIENT_LINES,
              f"{how}: tls_echo_client printed the documentation's lines")
        check(srv.lines[1:] == ["Data received: 'Hello World!'",
                                "Send: 'Hello World!'",
                                'Close the client socket'],
              f'{how}: the Python server got the message over TLS')
        check(not srv.errors, f'{how}: no error in the Python server')


def case_mutual_tls(args, pki):
    print('[3] mutual TLS: tls_echo_server --ca', flush=True)
    srv = Server([args.server, f'--cert={pki.server[0]}',
                  f'--key={pki.server[1]}', f'--ca={pki.ca}', '--port=0',
                  '--shards=2'])
    try:
        if not check(srv.wait_ready(), 'tls_echo_server is listening'):
            return
        got = python_client(client_context(pki, cert=pki.client),
                            port=srv.port)
        check(got == b'Hello World!',
              f'a client certificate signed by --ca: echoed ({got!r})')
        got = python_client(client_context(pki), port=srv.port)
        check(got != b'Hello World!' and isinstance(got, Exception),
              f'no client certificate: refused ({got!r})')
        got = python_client(client_context(pki, cert=pki.other_client),
                            port=srv.port)
        check(got != b'Hello World!' and isinstance(got, Exception),
              f'a certificate from another CA: refused ({got!r})')
        res = run([args.client, f'--ca={pki.ca}', f'--port={srv.port}',
                   f'--cert={pki.client[0]}', f'--key={pki.client[1]}'])
        check(res.returncode == 0 and res.stdout.splitlines() == CLIENT_LINES,
              f'tls_echo_client --cert/--key: echoed (rc={res.returncode}, '
              f'{res.stdout!r})')
        res = run([args.client, f'--ca={pki.ca}', f'--port={srv.port}'])
        show('client', res.stdout.splitlines())
        show('client-err', res.stderr.splitlines())
        check(res.returncode == 1 and 'Data received' not in res.stdout,
              f'tls_echo_client without a certificate: exit 1, no echo '
              f'(rc={res.returncode})')
        # The server goes on serving after the refusals.
        got = python_client(client_context(pki, cert=pki.client),
                            port=srv.port)
        check(got == b'Hello World!', f'still served afterwards ({got!r})')
    finally:
        stopped(srv, 'tls_echo_server --ca')


def case_openssl_cli(args, pki):
    print('[4] openssl s_client -> tls_echo_server', flush=True)
    srv = Server([args.server, f'--cert={pki.server[0]}',
                  f'--key={pki.server[1]}', '--port=0'])
    try:
        if not check(srv.wait_ready(), 'tls_echo_server is listening'):
            return
        # -quiet: only the application data on stdout. The server echoes
        # the first chunk and closes with close_notify: s_client then ends.
        p = subprocess.Popen(
            ['openssl', 's_client', '-connect', f'127.0.0.1:{srv.port}',
             '-CAfile', pki.ca, '-verify_return_error', '-verify_hostname',
             'localhost', '-servername', 'localhost', '-quiet'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(b'Hello s_client\n', timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        show('s_client', out.decode(errors='replace').splitlines())
        show('s_client-err', err.decode(errors='replace').splitlines())
        check(out == b'Hello s_client\n',
              f's_client read its line back ({out!r})')
        check(p.returncode == 0, f's_client exit code 0 ({p.returncode})')
    finally:
        stopped(srv, 'tls_echo_server')
    check_server_lines(srv.stdout, 'tls_echo_server', sent='Hello s_client\\n')

    print('[4] tls_echo_client -> openssl s_server -rev', flush=True)
    port = free_port()
    # -rev answers each line reversed; the line CLOSE makes it close with
    # close_notify; -naccept 1: it exits after this connection.
    p = subprocess.Popen(['openssl', 's_server', '-accept',
                          f'127.0.0.1:{port}', '-cert', pki.server[0], '-key',
                          pki.server[1], '-rev', '-naccept', '1'],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    lines = LineQueue(p.stdout)
    try:
        check(lines.wait_line(r'^ACCEPT', STEP_TIMEOUT) is not None,
              's_server is listening')
        res = run([args.client, f'--ca={pki.ca}', f'--port={port}',
                   '--message=Hello s_server\nCLOSE\n', '--timeout-ms=10000'])
        show('client', res.stdout.splitlines())
        show('client-err', res.stderr.splitlines())
        check(res.returncode == 0, f'tls_echo_client exit 0 ({res.returncode})')
        check(res.stdout.splitlines() == [
            "Data sent: 'Hello s_server\\nCLOSE\\n'",
            "Data received: 'revres_s olleH\\n'",
            'The server closed the connection'],
            's_server received the line (answered it reversed) and closed')
        try:
            p.wait(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        lines.join(STEP_TIMEOUT)
    check(any(l.startswith('CONNECTION ESTABLISHED') for l in lines.lines),
          's_server saw the handshake')


async def _starttls_python_client(port, ctx, message):
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    writer.write(b'STARTTLS\r\n')
    ready = await reader.readline()
    if ready != b'READY\r\n':
        writer.close()
        return f'answer {ready!r}'
    await writer.start_tls(ctx, server_hostname='localhost')
    got = await _echo_exchange(reader, writer, message)
    return got


class PipelinedClient:
    """A TLS client over a blocking socket with ssl.MemoryBIO: the test
    decides which bytes go out in which write."""

    def __init__(self, ctx, port):
        self.sock = socket.create_connection(('127.0.0.1', port),
                                             timeout=STEP_TIMEOUT)
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out,
                                server_hostname='localhost')

    def hello(self):
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.out.read()

    def _pull(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError('the server closed the connection')
        self.inc.write(data)

    def handshake(self):
        for _ in range(100):
            try:
                self.obj.do_handshake()
                self.sock.sendall(self.out.read())
                return
            except ssl.SSLWantReadError:
                self.sock.sendall(self.out.read())
                self._pull()
        raise RuntimeError('handshake did not finish')

    def send(self, data):
        self.obj.write(data)
        self.sock.sendall(self.out.read())

    def receive_all(self):
        got = b''
        while True:
            try:
                chunk = self.obj.read(65536)
                if not chunk:
                    return got
                got += chunk
            except ssl.SSLWantReadError:
                try:
                    self._pull()
                except EOFError:
                    return got
            except ssl.SSLZeroReturnError:
                return got


def case_starttls(args, pki):
    print('[5] tls_echo_client --starttls -> Python loop.start_tls server',
          flush=True)
    srv = PythonServer(server_context(pki.server), starttls=True)
    try:
        res = run([args.client, f'--ca={pki.ca}', f'--port={srv.port}',
                   '--starttls'])
    finally:
        srv.stop()
    show('client', res.stdout.splitlines())
    show('client-err', res.stderr.splitlines())
    check(res.returncode == 0, f'tls_echo_client --starttls exit 0 '
          f'({res.returncode})')
    check(res.stdout.splitlines() == CLIENT_LINES,
          "tls_echo_client --starttls printed the documentation's lines")
    check(not srv.errors and len(srv.lines) == 4,
          'the Python server upgraded and echoed')

    print('[5] Python StreamWriter.start_tls client -> tls_echo_server '
          '--starttls', flush=True)
    srv = Server([args.server, f'--cert={pki.server[0]}',
                  f'--key={pki.server[1]}', '--port=0', '--starttls',
                  '--shards=2'])
    try:
        if not check(srv.wait_ready(), 'tls_echo_server --starttls listens'):
            return
        try:
            got = asyncio.run(asyncio.wait_for(
                _starttls_python_client(srv.port, client_context(pki),
                                        b'Hello World!'), STEP_TIMEOUT))
        except Exception as e:  # noqa: BLE001
            got = e
        check(got == b'Hello World!', f'echoed after start_tls ({got!r})')
        # The client has its echo before the server has seen the close and
        # printed its last line: wait for that line, not for time.
        check(srv.wait_stdout(r'^' + SERVER_LINE_PATTERNS[-1] + r'$')
              is not None, 'tls_echo_server --starttls saw the close')
        stdout_then = len(srv.stdout)
        check_server_lines(srv.stdout[:stdout_then], 'tls_echo_server '
                           '--starttls')

        # The hello in the command's own write, and split right behind it.
        for split in (None, 7):
            c = PipelinedClient(client_context(pki), srv.port)
            try:
                hello = c.hello()
                if split is None:
                    c.sock.sendall(b'STARTTLS\r\n' + hello)
                else:
                    c.sock.sendall(b'STARTTLS\r\n' + hello[:split])
                    c.sock.sendall(hello[split:])
                ready = b''
                while not ready.endswith(b'\r\n') and len(ready) < 64:
                    b = c.sock.recv(1)
                    if not b:
                        break
                    ready += b
                check(ready == b'READY\r\n', f'pipelined ({split}): READY '
                      f'({ready!r})')
                c.handshake()
                c.send(b'pipelined hello')
                got = c.receive_all()
            except Exception as e:  # noqa: BLE001
                got = e
            finally:
                c.sock.close()
            check(got == b'pipelined hello',
                  f'pipelined ({split}): the hello sent with STARTTLS was '
                  f'kept, echoed over TLS ({got!r})')

        # A wrong first line: refused in plaintext, the server goes on.
        with socket.create_connection(('127.0.0.1', srv.port),
                                      timeout=STEP_TIMEOUT) as s:
            s.sendall(b'HELLO\r\n')
            answer = b''
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        check(answer == b'ERROR expected STARTTLS\r\n',
              f'a wrong first line is refused ({answer!r})')
        # tls_echo_client without --starttls against it: not TLS.
        res = run([args.client, f'--ca={pki.ca}', f'--port={srv.port}',
                   '--timeout-ms=5000'])
        show('client-err', res.stderr.splitlines())
        check(res.returncode == 1 and 'error:' in res.stderr,
              f'a TLS client on the STARTTLS port fails cleanly '
              f'(rc={res.returncode})')
    finally:
        stopped(srv, 'tls_echo_server --starttls')


def case_bad_input(args, pki):
    print('[6] bad input against tls_echo_server', flush=True)
    srv = Server([args.server, f'--cert={pki.server[0]}',
                  f'--key={pki.server[1]}', '--port=0', '--shards=2'])
    try:
        if not check(srv.wait_ready(), 'tls_echo_server is listening'):
            return
        with socket.create_connection(('127.0.0.1', srv.port),
                                      timeout=STEP_TIMEOUT) as s:
            s.sendall(b'GET / HTTP/1.0\r\n\r\n')
            answer = b''
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
            except OSError:
                pass
        check(b'GET' not in answer,
              f'a plaintext client gets no echo ({answer[:40]!r})')
        check(srv.wait_stderr(r'TLS connection dropped: tls: not_tls')
              is not None, 'the server logs the plaintext client')
        got = python_client(client_context(pki), port=srv.port)
        check(got == b'Hello World!',
              f'the next client is served ({got!r})')

        res = run([args.client, f'--ca={pki.otherca}', f'--port={srv.port}'])
        show('client-err', res.stderr.splitlines())
        check(res.returncode == 1 and 'unknown_ca' in res.stderr and
              res.stdout == '',
              f'tls_echo_client trusting another CA: exit 1, unknown_ca '
              f'(rc={res.returncode})')
        res = run([args.client, f'--port={srv.port}'])
        check(res.returncode == 1 and 'unknown_ca' in res.stderr,
              f'tls_echo_client with the system CAs: exit 1, unknown_ca '
              f'(rc={res.returncode})')
        res = run([args.client, f'--ca={pki.ca}', f'--port={srv.port}',
                   '--server-hostname=wrong.example'])
        show('client-err', res.stderr.splitlines())
        check(res.returncode == 1 and 'hostname_mismatch' in res.stderr and
              '--server-hostname' in res.stderr,
              f'tls_echo_client, wrong --server-hostname: exit 1, '
              f'hostname_mismatch (rc={res.returncode})')
        res = run([args.client, f'--port={srv.port}', '--insecure',
                   '--server-hostname=wrong.example'])
        check(res.returncode == 0 and res.stdout.splitlines() == CLIENT_LINES,
              f'--insecure accepts it (rc={res.returncode})')
        got = python_client(client_context(pki), port=srv.port,
                            server_hostname='wrong.example')
        check(isinstance(got, ssl.SSLCertVerificationError),
              f'Python with a wrong server_hostname: refused ({got!r})')
        got = python_client(client_context(pki, cafile=pki.otherca),
                            port=srv.port)
        check(isinstance(got, ssl.SSLCertVerificationError),
              f'Python trusting another CA: refused ({got!r})')
    finally:
        stopped(srv, 'tls_echo_server')

    print('[6] tls_echo_client -> a server whose certificate names another '
          'host', flush=True)
    srv = PythonServer(server_context(pki.wrong_name))
    try:
        res = run([args.client, f'--ca={pki.ca}', f'--port={srv.port}'])
    finally:
        srv.stop()
    show('client-err', res.stderr.splitlines())
    check(res.returncode == 1 and 'hostname_mismatch' in res.stderr,
          f'exit 1, hostname_mismatch (rc={res.returncode})')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--server', required=True)
    parser.add_argument('--client', required=True)
    args = parser.parse_args()
    if shutil.which('openssl') is None:
        print('SKIPPED: the openssl command is not installed (it makes the '
              'test certificates)')
        return SKIP
    with tempfile.TemporaryDirectory(prefix='sw-tls-interop-') as tmp:
        pki = Pki(tmp)
        for case in (case_python_client, case_shardwire_client):
            case(args, pki, tmp)
        for case in (case_mutual_tls, case_openssl_cli, case_starttls,
                     case_bad_input):
            case(args, pki)
    if failures:
        print(f'{len(failures)} check(s) failed:')
        for f in failures:
            print(f'  - {f}')
        return 1
    print('all TLS interop checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
