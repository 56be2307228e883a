// A real NestJS microservice (Kafka transporter, on kafkajs) for vidmesh's interop tests.
// Usage: node kafka-server.js --brokers HOST:PORT --client-id ID --group ID --topics JSON
//
// --topics names the topics (= Nest patterns) it serves, so that each test run has its own:
//   {"event": T, "echo": T, "describe": T, "notFound": T, "crash": T}
// (any may be left out). Handlers:
//   event     @EventPattern: prints {"event": {"topic", "partition", "key", "headers", "data"}}
//   echo      @MessagePattern: answers its payload
//   describe  @MessagePattern: answers {"text", "codePoints", "upper"} of a string payload
//   notFound  @MessagePattern: throws RpcException({statusCode: 404, message, error: "Not Found"})
//   crash     @MessagePattern: throws a plain Error (Nest answers "Internal server error")
// Prints {"ready": true} on stdout once its consumer joined its group, then one JSON line per
// event received. Its group, if new, reads each topic from the beginning: nothing sent between
// the topics' creation and the join is lost. Exits cleanly on SIGTERM.
'use strict';
require('reflect-metadata');
const { Controller, Module, Logger } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const {
  Transport, MessagePattern, EventPattern, RpcException, Payload, Ctx,
} = require('@nestjs/microservices');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

// Values as KafkaParser left them: strings, parsed JSON, or Buffers (a leading zero byte), which
// are printed as {"buffer": hex}.
const plain = (value) => (Buffer.isBuffer(value) ? { buffer: value.toString('hex') } : value);

class KafkaPeerController {
  recordEvent(data, context) {
    const message = context.getMessage();
    const headers = {};
    for (const [name, value] of Object.entries(message.headers || {})) {
      headers[name] = plain(value);
    }
    print({
      event: {
        topic: context.getTopic(),
        partition: context.getPartition(),
        key: plain(message.key ?? null),
        headers,
        data: plain(data),
      },
    });
  }
  echo(data) { return data; }
  describe(data) {
    return { text: data, codePoints: Array.from(data).length, upper: data.toUpperCase() };
  }
  notFound(data) {
    throw new RpcException({ statusCode: 404, message: `thing ${data} not found`, error: 'Not Found' });
  }
  crash() { throw new Error('kaboom'); }
}

// Decorators applied by hand: this file is plain JavaScript, run without a compiler; the
// patterns come from the command line.
const topics = JSON.parse(arg('topics', '{}'));
const method = (name) => Object.getOwnPropertyDescriptor(KafkaPeerController.prototype, name);
const decorate = (decorators, name) =>
  Reflect.decorate(decorators, KafkaPeerController.prototype, name, method(name));
const handlers = {
  event: (topic) => decorate([EventPattern(topic)], 'recordEvent'),
  echo: (topic) => decorate([MessagePattern(topic)], 'echo'),
  describe: (topic) => decorate([MessagePattern(topic)], 'describe'),
  notFound: (topic) => decorate([MessagePattern(topic)], 'notFound'),
  crash: (topic) => decorate([MessagePattern(topic)], 'crash'),
};
// Parameter decorators, as TypeScript's __param applies them: @Payload() data, @Ctx() context.
Payload()(KafkaPeerController.prototype, 'recordEvent', 0);
Ctx()(KafkaPeerController.prototype, 'recordEvent', 1);
for (const [kind, topic] of Object.entries(topics)) {
  if (!handlers[kind]) throw new TypeError(`unknown handler ${JSON.stringify(kind)}`);
  handlers[kind](topic);
}
Reflect.decorate([Controller()], KafkaPeerController);

class KafkaPeerModule {}
Reflect.decorate([Module({ controllers: [KafkaPeerController] })], KafkaPeerModule);

async function main() {
  const app = await NestFactory.createMicroservice(KafkaPeerModule, {
    transport: Transport.KAFKA,
    options: {
      // postfixId '' keeps the ids as given (Nest appends '-server' by default).
      postfixId: '',
      client: {
        clientId: arg('client-id', 'vidmesh-nest-peer'),
        brokers: arg('brokers').split(','),
        retry: { initialRetryTime: 100, retries: 8 },
      },
      consumer: {
        groupId: arg('group'),
        // tansu holds a JoinGroup for whole seconds while less than sessionTimeout / 2 passed:
        // 2 s makes a join take ~1 s. Heartbeats go out between fetches, so a fetch must not
        // wait longer than the session lasts.
        sessionTimeout: 2000,
        rebalanceTimeout: 4000,
        heartbeatInterval: 250,
        maxWaitTimeInMs: 100,
      },
      subscribe: { fromBeginning: true },
    },
    logger: process.env.NEST_LOGS ? ['log', 'error', 'warn'] : ['error'],
  });
  await app.listen();
  print({ ready: true });
  const stop = async () => { await app.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => { Logger.error(error); process.exit(1); });
