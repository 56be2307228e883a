// The Nest producer of vidmesh's Kafka benchmark: Nest's ClientKafka (kafkajs), emit only.
// Usage: node kafka-bench-producer.js --brokers H:P
// Prints "READY 0" once connected, then plays one run per JSON line on stdin: {"topic": T,
//   "run": label, "n": events, "rate": events/s or null, "window": emits in flight, "body": {}}
// Each event is {run, n, i, t, body}, t being its send time in wall-clock microseconds since the
// epoch. rate null: as fast as `window` emits in flight allow; else event i is due at i / rate s
// from the start. Answers each run with one JSON line: {run, first_emit_us, last_emit_us,
// last_ack_us}, like benchmarks/kafka_producer.py. Exits at the end of stdin.
'use strict';
require('reflect-metadata');
const readline = require('readline');
const { performance } = require('perf_hooks');
const { Logger } = require('@nestjs/common');
const { ClientKafka } = require('@nestjs/microservices');
const { lastValueFrom } = require('rxjs');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback === undefined) throw new Error(`--${name} is required`);
  return fallback;
}

// Wall clock in microseconds with sub-millisecond resolution, as in kafka-bench-consumer.js.
const wallUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const toStderr = (...parts) => process.stderr.write(`${parts.join(' ')}\n`);
const stderrLogger = {
  log() {}, debug() {}, verbose() {}, fatal: toStderr, error: toStderr, warn: toStderr,
};

async function play(client, command) {
  const { topic, run, n, rate, window, body } = command;
  const start = performance.now();
  const firstEmit = wallUs();
  let lastEmit = firstEmit;
  let inFlight = 0;
  let failure = null;
  let wake = null;
  const settled = () => {
    inFlight -= 1;
    if (wake !== null) { const w = wake; wake = null; w(); }
  };
  for (let i = 0; i < n; i += 1) {
    if (rate) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
    }
    while (inFlight >= window) await new Promise((resolve) => { wake = resolve; });
    if (failure !== null) throw failure;
    inFlight += 1;
    lastEmit = wallUs();
    lastValueFrom(client.emit(topic, { run, n, i, t: lastEmit, body })).then(
      settled,
      (error) => { failure = error; settled(); },
    );
  }
  while (inFlight > 0) await new Promise((resolve) => { wake = resolve; });
  if (failure !== null) throw failure;
  return {
    run,
    first_emit_us: firstEmit,
    last_emit_us: lastEmit,
    last_ack_us: wallUs(),
  };
}

async function main() {
  Logger.overrideLogger(stderrLogger);
  const client = new ClientKafka({
    client: { clientId: 'kafka-bench', brokers: [arg('brokers')] },
    producerOnlyMode: true, // emit only: no reply consumer, no group to join
  });
  await client.connect();
  process.stdout.write('READY 0\n');
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const result = await play(client, JSON.parse(line));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  await client.close();
}

main().then(
  () => process.exit(0),
  (error) => { toStderr(error.stack || error); process.exit(1); },
);
