// A Nest ClientTCP load generator for vidmesh's benchmarks.
// Usage: node bench-client.js --host H --port N --concurrency C --duration S --warmup W
//        [--payload JSON]
// Opens ONE connection; C loops each await `client.send('echo', payload)` one after another for
// W seconds of warmup and then S seconds of measurement. Every request completed inside the
// measurement window is counted and its latency (process.hrtime.bigint) recorded. Prints one JSON
// line: {rps, p50_ms, p99_ms, count, cpu_pct}, cpu_pct being this process's CPU use under load.
'use strict';
require('reflect-metadata');
const { ClientTCP } = require('@nestjs/microservices');
const { lastValueFrom } = require('rxjs');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback === undefined) throw new Error(`--${name} is required`);
  return fallback;
}

function percentile(sorted, q) {
  // Nearest rank, as benchmarks/rpc.py computes it.
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1];
}

async function main() {
  const host = arg('host', '127.0.0.1');
  const port = Number(arg('port'));
  const concurrency = Number(arg('concurrency', '1'));
  const duration = Number(arg('duration'));
  const warmup = Number(arg('warmup', '0'));
  const payload = JSON.parse(arg('payload', '{"id":1,"name":"vidmesh","tags":["a","b"]}'));

  const client = new ClientTCP({ host, port });
  await client.connect();
  const first = await lastValueFrom(client.send('echo', payload));
  if (JSON.stringify(first) !== JSON.stringify(payload)) {
    throw new Error(`echo answered ${JSON.stringify(first)}`);
  }

  const start = process.hrtime.bigint();
  const measureFrom = start + BigInt(Math.round(warmup * 1e9));
  const until = measureFrom + BigInt(Math.round(duration * 1e9));
  const latencies = [];
  const cpuBefore = process.cpuUsage();

  async function loop() {
    let now = process.hrtime.bigint();
    while (now < until) {
      const began = now;
      await lastValueFrom(client.send('echo', payload));
      now = process.hrtime.bigint();
      if (now >= measureFrom && now <= until) latencies.push(Number(now - began) / 1e6);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop));

  const elapsedUs = Number(process.hrtime.bigint() - start) / 1e3;
  const cpu = process.cpuUsage(cpuBefore);
  client.close();

  if (latencies.length === 0) throw new Error('no request completed in the measurement window');
  const sorted = Float64Array.from(latencies).sort();
  process.stdout.write(`${JSON.stringify({
    rps: latencies.length / duration,
    p50_ms: percentile(sorted, 0.5),
    p99_ms: percentile(sorted, 0.99),
    count: latencies.length,
    cpu_pct: (100 * (cpu.user + cpu.system)) / elapsedUs,
  })}\n`);
}

main().then(
  () => process.exit(0),
  (error) => { process.stderr.write(`${error.stack || error}\n`); process.exit(1); },
);
