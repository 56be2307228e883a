// The Nest consumer of vidmesh's Kafka benchmark: a Nest microservice (Transport.KAFKA, kafkajs)
// with one @EventPattern handler on the benchmark's topic.
// Usage: node kafka-bench-consumer.js --brokers H:P --topic T --group G [--max-wait-ms MS]
// Prints "READY 0" on stdout once the consumer joined its group, then one JSON line per finished
// run: {run, count, first_handled_us, last_handled_us, latencies_us}, like
// benchmarks/kafka_consumer.py. Every event is {run, n, i, t, ...}, t being the send time in
// wall-clock microseconds since the epoch; the handler notes now - t. Events delivered twice
// count once. Nest's and kafkajs's logs go to stderr. Exits cleanly on SIGTERM.
'use strict';
require('reflect-metadata');
const { performance } = require('perf_hooks');
const { Controller, Module, Logger } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { Transport, EventPattern } = require('@nestjs/microservices');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback === undefined) throw new Error(`--${name} is required`);
  return fallback;
}

// Wall clock in microseconds with sub-millisecond resolution (Date.now() has whole ms): the
// epoch time of this process's start plus monotonic time since, as Python's time.time_ns().
const wallUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

const toStderr = (...parts) => process.stderr.write(`${parts.join(' ')}\n`);
const stderrLogger = {
  log() {}, debug() {}, verbose() {}, fatal: toStderr, error: toStderr, warn: toStderr,
};

const runs = new Map();

function record(event) {
  const now = wallUs();
  let tally = runs.get(event.run);
  if (tally === undefined) {
    tally = { n: Number(event.n), seen: new Uint8Array(Number(event.n)), first: now, latencies: [] };
    runs.set(event.run, tally);
  }
  const index = Number(event.i);
  if (tally.seen[index]) return;
  tally.seen[index] = 1;
  tally.latencies.push(now - Number(event.t));
  if (tally.latencies.length === tally.n) {
    runs.delete(event.run);
    process.stdout.write(`${JSON.stringify({
      run: event.run,
      count: tally.n,
      first_handled_us: tally.first,
      last_handled_us: now,
      latencies_us: tally.latencies,
    })}\n`);
  }
}

async function main() {
  const topic = arg('topic');
  class BenchController {
    handled(data) { record(data); }
  }
  const method = Object.getOwnPropertyDescriptor(BenchController.prototype, 'handled');
  Reflect.decorate([EventPattern(topic)], BenchController.prototype, 'handled', method);
  Reflect.decorate([Controller()], BenchController);
  class BenchModule {}
  Reflect.decorate([Module({ controllers: [BenchController] })], BenchModule);

  Logger.overrideLogger(stderrLogger);
  const consumer = {
    groupId: arg('group'),
    // tansu holds a JoinGroup for whole seconds while under half the session timeout has passed:
    // 2 s makes a join take ~1 s (see vidmesh.devstack.broker.FAST_GROUP_JOIN).
    sessionTimeout: 2000,
    heartbeatInterval: 250,
  };
  const maxWait = arg('max-wait-ms', '');
  if (maxWait !== '') consumer.maxWaitTimeInMs = Number(maxWait);
  const app = await NestFactory.createMicroservice(BenchModule, {
    transport: Transport.KAFKA,
    options: {
      client: { clientId: 'kafka-bench', brokers: [arg('brokers')] },
      consumer,
      subscribe: { fromBeginning: true },
    },
    logger: stderrLogger,
  });
  await app.listen(); // kafkajs' consumer.run() resolves once the group was joined and synced
  process.stdout.write('READY 0\n');
  const stop = async () => { await app.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => { toStderr(error.stack || error); process.exit(1); });
