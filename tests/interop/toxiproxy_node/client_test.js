// chaos_proxy driven by a Toxiproxy client no one here wrote: the npm
// package toxiproxy-node-client (installed by run_toxiproxy_node.py).
//
// Environment: TOXIPROXY_URL (chaos_proxy's --api address as a URL) and
// ECHO_ADDR ("127.0.0.1:PORT" of a persistent tcp_echo_server). Every step
// observes its effect on echo traffic through the proxy, with plain `net`
// sockets. Timing checks are lower bounds (a toxic delays at least this
// much) or generous upper bounds where the check is that a toxic is gone.
// Each socket wait has a deadline, so the script ends by itself.
'use strict';

const assert = require('assert');
const net = require('net');
const {Toxiproxy} = require('toxiproxy-node-client');

const API = process.env.TOXIPROXY_URL;
const ECHO = process.env.ECHO_ADDR;
const STEP_MS = 10000;

let failures = 0;
async function step(what, fn) {
  try {
    await fn();
    console.log(`  ok: ${what}`);
  } catch (e) {
    failures += 1;
    console.log(`  FAILED: ${what}: ${e && e.stack ? e.stack : e}`);
  }
}

function portOf(addr) {
  const m = /:(\d+)$/.exec(addr);
  assert.ok(m, `an address with a port: ${addr}`);
  return Number(m[1]);
}

// Connects to the proxy, sends `payload` (then half-closes when `end`),
// and collects what comes back until `want` bytes arrived, the peer closed,
// an error, or the deadline. Resolves with what happened and when.
function exchange(
    port, payload,
    {want = payload.length, end = false, deadline = STEP_MS} = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks = [];
    let got = 0;
    let reads = 0;
    let done = false;
    const sock = net.connect({host : '127.0.0.1', port});
    const finish = (how, error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({
        how,
        error,
        data : Buffer.concat(chunks),
        reads,
        ms : Date.now() - started
      });
    };
    const timer = setTimeout(() => finish('deadline'), deadline);
    sock.on('connect', () => {
      if (payload.length > 0) sock.write(payload);
      if (end) sock.end();
    });
    sock.on('data', (d) => {
      chunks.push(d);
      got += d.length;
      reads += 1;
      if (want !== null && got >= want) finish('complete');
    });
    sock.on('end', () => finish('closed'));
    sock.on('error', (e) => finish('error', e.code));
  });
}

function bytes(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++)
    b[i] = 97 + (i % 26);
  return b;
}

async function echoes(port, what) {
  const payload = bytes(64);
  const r = await exchange(port, payload);
  assert.strictEqual(r.how, 'complete',
                     `${what}: echo completes (${r.how} ${r.error || ''})`);
  assert.ok(r.data.equals(payload), `${what}: echo is intact`);
  return r;
}

async function rejectsWith(promise, status) {
  await assert.rejects(promise, (e) => {
    assert.match(String(e.message), new RegExp(`status code ${status}`));
    return true;
  });
}

async function main() {
  assert.ok(API && ECHO, 'TOXIPROXY_URL and ECHO_ADDR are set');
  const toxiproxy = new Toxiproxy(API);
  const raw = toxiproxy.getApi();
  let proxy;
  let port;

  await step('version answers', async () => {
    const v = await toxiproxy.getVersion();
    assert.ok(v.length > 0);
  });

  await step('create a proxy on port 0; listen shows the real port',
             async () => {
               proxy = await toxiproxy.createProxy(
                   {name : 'echo', listen : '127.0.0.1:0', upstream : ECHO});
               port = portOf(proxy.listen);
               assert.ok(port > 0, `bound port (${proxy.listen})`);
               assert.strictEqual(proxy.upstream, ECHO);
               assert.strictEqual(proxy.enabled, true);
               await echoes(port, 'clean proxy');
             });

  await step('creating it twice is a conflict (409)', async () => {
    await rejectsWith(
        toxiproxy.createProxy(
            {name : 'echo', listen : '127.0.0.1:0', upstream : ECHO}),
        409);
  });

  await step('get and getAll show it', async () => {
    const got = await toxiproxy.get('echo');
    assert.strictEqual(got.listen, proxy.listen);
    const all = await toxiproxy.getAll();
    assert.ok(all.echo, 'getAll has "echo"');
    assert.strictEqual(all.echo.upstream, ECHO);
  });

  await step(
      'latency (downstream) delays the echo; update raises it; remove ends it',
      async () => {
        const toxic = await proxy.addToxic({
          name : 'lat',
          type : 'latency',
          stream : 'downstream',
          toxicity : 1,
          attributes : {latency : 300, jitter : 0}
        });
        assert.strictEqual(toxic.name, 'lat');
        let r = await echoes(port, 'latency 300');
        assert.ok(r.ms >= 280, `round trip ${r.ms} ms >= 280`);
        const fetched = await proxy.getToxic('lat');
        assert.strictEqual(fetched.attributes.latency, 300);
        const updated = await toxic.update({attributes : {latency : 700}});
        assert.strictEqual(updated.attributes.latency, 700);
        r = await echoes(port, 'latency 700');
        assert.ok(r.ms >= 650, `round trip ${r.ms} ms >= 650`);
        await updated.remove();
        r = await echoes(port, 'latency removed');
        assert.ok(r.ms < 600, `round trip ${r.ms} ms < 600 once removed`);
        await rejectsWith(proxy.getToxic('lat'), 404);
      });

  await step('latency upstream delays the echo too', async () => {
    const toxic = await proxy.addToxic({
      type : 'latency',
      stream : 'upstream',
      toxicity : 1,
      attributes : {latency : 300}
    });
    assert.strictEqual(toxic.name, 'latency_upstream',
                       'default name type_stream');
    const r = await echoes(port, 'upstream latency');
    assert.ok(r.ms >= 280, `round trip ${r.ms} ms >= 280`);
    await toxic.remove();
  });

  await step('toxicity 0 never applies', async () => {
    const toxic = await proxy.addToxic({
      name : 'never',
      type : 'latency',
      stream : 'downstream',
      toxicity : 0,
      attributes : {latency : 2000}
    });
    for (let i = 0; i < 3; i++) {
      const r = await echoes(port, 'toxicity 0');
      assert.ok(r.ms < 1500, `round trip ${r.ms} ms < 1500`);
    }
    await toxic.remove();
  });

  await step('bandwidth slows a transfer', async () => {
    const toxic = await proxy.addToxic({
      name : 'bw',
      type : 'bandwidth',
      stream : 'downstream',
      toxicity : 1,
      attributes : {rate : 10}
    });
    const payload = bytes(10000);
    const r = await exchange(port, payload);
    assert.strictEqual(r.how, 'complete');
    assert.ok(r.data.equals(payload), 'intact');
    assert.ok(r.ms >= 600, `10,000 bytes at 10 KB/s took ${r.ms} ms >= 600`);
    await toxic.remove();
  });

  await step('slicer cuts the echo into many small reads', async () => {
    const toxic = await proxy.addToxic({
      name : 'slices',
      type : 'slicer',
      stream : 'downstream',
      toxicity : 1,
      attributes : {average_size : 10, size_variation : 5, delay : 2000}
    });
    const payload = bytes(1000);
    const r = await exchange(port, payload);
    assert.strictEqual(r.how, 'complete');
    assert.ok(r.data.equals(payload), 'intact and in order');
    assert.ok(r.reads >= 10, `${r.reads} reads >= 10`);
    await toxic.remove();
  });

  await step('limit_data closes after exactly N bytes', async () => {
    const toxic = await proxy.addToxic({
      name : 'limit',
      type : 'limit_data',
      stream : 'downstream',
      toxicity : 1,
      attributes : {bytes : 100}
    });
    const r = await exchange(port, bytes(1000), {want : null});
    assert.strictEqual(r.how, 'closed',
                       `ends by close (${r.how} ${r.error || ''})`);
    assert.strictEqual(r.data.length, 100);
    await toxic.remove();
  });

  await step('timeout swallows the data and closes after T ms', async () => {
    const toxic = await proxy.addToxic({
      name : 'to',
      type : 'timeout',
      stream : 'downstream',
      toxicity : 1,
      attributes : {timeout : 400}
    });
    const r = await exchange(port, bytes(64), {want : null});
    assert.ok(r.how === 'closed' || r.how === 'error', `ends (${r.how})`);
    assert.strictEqual(r.data.length, 0, 'nothing came through');
    assert.ok(r.ms >= 350, `closed after ${r.ms} ms >= 350`);
    await toxic.remove();
  });

  await step('timeout 0 swallows and keeps the connection open', async () => {
    const toxic = await proxy.addToxic({
      name : 'hole',
      type : 'timeout',
      stream : 'downstream',
      toxicity : 1,
      attributes : {timeout : 0}
    });
    const r = await exchange(port, bytes(64), {want : null, deadline : 800});
    assert.strictEqual(r.how, 'deadline', `still open after 800 ms (${r.how})`);
    assert.strictEqual(r.data.length, 0, 'nothing came through');
    await toxic.remove();
  });

  await step('reset_peer resets the connection T ms after the first data',
             async () => {
               const toxic = await proxy.addToxic({
                 name : 'rst',
                 type : 'reset_peer',
                 stream : 'downstream',
                 toxicity : 1,
                 attributes : {timeout : 200}
               });
               const r = await exchange(port, bytes(8), {want : null});
               assert.strictEqual(r.how, 'error', `reset (${r.how})`);
               assert.strictEqual(r.error, 'ECONNRESET');
               assert.ok(r.ms >= 150, `after ${r.ms} ms >= 150`);
               await toxic.remove();
             });

  await step(
      'slow_close delays the close that follows the peer\'s', async () => {
        const plain = await exchange(port, bytes(8), {want : null, end : true});
        assert.strictEqual(plain.how, 'closed',
                           `closes without the toxic (${plain.how})`);
        const toxic = await proxy.addToxic({
          name : 'slow',
          type : 'slow_close',
          stream : 'downstream',
          toxicity : 1,
          attributes : {delay : 600}
        });
        const r = await exchange(port, bytes(8), {want : null, end : true});
        assert.strictEqual(r.how, 'closed', `closes (${r.how})`);
        assert.strictEqual(r.data.length, 8, 'the echo came first');
        assert.ok(r.ms >= 550, `closed after ${r.ms} ms >= 550`);
        await toxic.remove();
      });

  await step('a bad toxic type is refused (400) and a missing proxy is 404',
             async () => {
               await rejectsWith(proxy.addToxic({
                 name : 'bad',
                 type : 'no_such_toxic',
                 stream : 'downstream',
                 toxicity : 1,
                 attributes : {}
               }),
                                 400);
               await rejectsWith(toxiproxy.get('no_such_proxy'), 404);
             });

  await step('disable refuses connections; enable serves the same port again',
             async () => {
               const off =
                   await proxy.update({...proxy.toJson(), enabled : false});
               assert.strictEqual(off.enabled, false);
               const r = await exchange(port, bytes(8), {want : null});
               assert.strictEqual(r.how, 'error', `refused (${r.how})`);
               assert.strictEqual(r.error, 'ECONNREFUSED');
               const on =
                   await proxy.update({...proxy.toJson(), enabled : true});
               assert.strictEqual(on.enabled, true);
               assert.strictEqual(portOf(on.listen), port, 'same port');
               await echoes(port, 'enabled again');
             });

  await step('populate creates new proxies and keeps an unchanged one',
             async () => {
               const got = await toxiproxy.populate([
                 {name : 'echo', listen : `127.0.0.1:${port}`, upstream : ECHO},
                 {name : 'echo2', listen : '127.0.0.1:0', upstream : ECHO},
               ]);
               assert.ok(got.echo && got.echo2, 'both returned');
               assert.strictEqual(portOf(got.echo.listen), port);
               await echoes(port, 'echo after populate');
               await echoes(portOf(got.echo2.listen), 'echo2');
             });

  await step('reset removes every toxic and enables every proxy', async () => {
    await proxy.addToxic({
      name : 'lat',
      type : 'latency',
      stream : 'downstream',
      toxicity : 1,
      attributes : {latency : 1500}
    });
    const p2 = await toxiproxy.get('echo2');
    await p2.update({...p2.toJson(), enabled : false});
    await toxiproxy.reset();
    const body = (await raw.get(`${API}/proxies/echo`)).data;
    assert.deepStrictEqual(body.toxics, []);
    const again = await toxiproxy.get('echo2');
    assert.strictEqual(again.enabled, true);
    const r = await echoes(port, 'after reset');
    assert.ok(r.ms < 1200, `round trip ${r.ms} ms < 1200: the toxic is gone`);
    await echoes(portOf(again.listen), 'echo2 after reset');
  });

  await step('remove deletes a proxy (then 404) and stops its listener',
             async () => {
               const p2 = await toxiproxy.get('echo2');
               const p2port = portOf(p2.listen);
               await p2.remove();
               await rejectsWith(toxiproxy.get('echo2'), 404);
               const r = await exchange(p2port, bytes(8), {want : null});
               assert.strictEqual(r.error, 'ECONNREFUSED');
             });

  console.log(failures === 0 ? 'all steps passed'
                             : `${failures} step(s) failed`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e) => {
  console.log(`FAILED: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
