// A real NestJS ClientKafka (on kafkajs) that runs a scenario, for vidmesh's interop tests.
// Usage: node kafka-client.js --brokers HOST:PORT --client-id ID --group ID [--timeout MS]
//        [--calls FILE] [--hold] [--reply-partitions-at-most K]
//
// Reads a JSON list of calls from FILE (or stdin), subscribes to the reply topic of every
// pattern it will send to (`subscribeToResponseOf` before `connect`), runs the calls in order,
// prints one JSON line holding a list with one result per call, and exits 0.
// --reply-partitions-at-most K: before the first call, wait until the group gave this client at
//   most K partitions of each reply topic (until other clients of its group joined, so no
//   rebalance moves its reply partition while calls are in flight).
// --hold: after printing the results, stay in the group until stdin ends (with --calls FILE), so
//   that leaving does not rebalance the group under other clients' calls.
// Before the results, it prints {"replyPartitions": {topic: [partition, ...]}}, its assignment.
// A call is
//   {"kind": "send", "pattern": P, "data": D}  lastValueFrom(client.send(P, D)): the (last) answer
//   {"kind": "stream", "pattern": P, "data": D}  client.send(P, D).pipe(toArray()): every item
//   {"kind": "emit", "pattern": P, "data": D}  client.emit(P, D): null once the broker has it
//                                              (D may be Nest's {key, value, headers} form)
// with an optional "timeout" (ms, default --timeout). A result is {"ok": value}, or {"err": e}
// where e is the error exactly as the server sent it (an object or a string); an error raised on
// this side (a timeout, an invalid call) is {"err": "Name: message", "local": true}.
'use strict';
const fs = require('fs');
const { Logger } = require('@nestjs/common');
const { ClientKafka } = require('@nestjs/microservices');
const { lastValueFrom, timeout, toArray } = require('rxjs');

// Outside a Nest application ClientKafka logs (kafkajs's lines too) through the static Logger,
// which writes to stdout, where the results go: keep the errors only (they go to stderr), unless
// NEST_LOGS is set.
Logger.overrideLogger(process.env.NEST_LOGS ? ['log', 'error', 'warn'] : ['error']);

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function readCalls() {
  const file = arg('calls');
  return JSON.parse(fs.readFileSync(file === undefined || file === '-' ? 0 : file, 'utf8'));
}

async function run(client, call, defaultTimeout) {
  const ms = call.timeout ?? defaultTimeout;
  try {
    switch (call.kind) {
      case 'send':
        return { ok: await lastValueFrom(client.send(call.pattern, call.data).pipe(timeout(ms))) };
      case 'stream':
        return {
          ok: await lastValueFrom(client.send(call.pattern, call.data).pipe(timeout(ms), toArray())),
        };
      case 'emit':
        await lastValueFrom(client.emit(call.pattern, call.data).pipe(timeout(ms)), {
          defaultValue: null,
        });
        return { ok: null };
      default:
        throw new TypeError(`unknown call kind ${JSON.stringify(call.kind)}`);
    }
  } catch (error) {
    if (error instanceof Error) {
      return { err: `${error.name}: ${error.message}`, local: true };
    }
    return { err: error === undefined ? null : error };
  }
}

// ClientKafka keeps only the lowest partition of each reply topic (where its answers go); this
// one also keeps the whole assignment of its latest join.
class AssignmentRecordingClientKafka extends ClientKafka {
  setConsumerAssignments(data) {
    super.setConsumerAssignments(data);
    this.memberAssignment = data.payload.memberAssignment;
  }

  async waitForAssignment(isSettled, ms) {
    const deadline = Date.now() + ms;
    while (!(this.memberAssignment && isSettled(this.memberAssignment))) {
      if (Date.now() > deadline) {
        throw new Error(`reply partitions still ${JSON.stringify(this.memberAssignment)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function main() {
  const calls = readCalls();
  const defaultTimeout = Number(arg('timeout', '10000'));
  const client = new AssignmentRecordingClientKafka({
    // postfixId '' keeps the ids as given (Nest appends '-client' by default).
    postfixId: '',
    client: {
      clientId: arg('client-id', 'vidmesh-nest-client'),
      brokers: arg('brokers').split(','),
      retry: { initialRetryTime: 100, retries: 8 },
    },
    consumer: {
      groupId: arg('group'),
      // See kafka-server.js: a ~1 s join on tansu, and fetches shorter than the session.
      sessionTimeout: 2000,
      rebalanceTimeout: 4000,
      heartbeatInterval: 250,
      maxWaitTimeInMs: 100,
    },
    // A new group would start at the end of the reply topics, possibly after an early answer.
    subscribe: { fromBeginning: true },
  });
  const requests = calls.filter((c) => c.kind === 'send' || c.kind === 'stream');
  for (const pattern of new Set(requests.map((c) => c.pattern))) {
    client.subscribeToResponseOf(pattern);
  }
  // Resolves once the consumer joined its group, so the reply partitions are known.
  await client.connect();
  const atMost = arg('reply-partitions-at-most');
  if (atMost !== undefined) {
    await client.waitForAssignment(
      (assignment) => Object.values(assignment).every((p) => p.length <= Number(atMost)),
      defaultTimeout,
    );
  }
  process.stdout.write(`${JSON.stringify({ replyPartitions: client.memberAssignment ?? {} })}\n`);
  const results = [];
  for (const call of calls) {
    results.push(await run(client, call, defaultTimeout));
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
  if (process.argv.includes('--hold')) {
    await new Promise((resolve) => {
      process.stdin.on('end', resolve);
      process.stdin.on('error', resolve);
      process.stdin.resume();
    });
  }
  setTimeout(() => process.exit(0), 3000).unref();
  await client.close();
  process.exit(0);
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
