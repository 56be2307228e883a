// A real NestJS microservice (TCP transporter) for vidmesh's interop tests and benchmarks.
// Usage: node server.js --port N [--tls-cert FILE --tls-key FILE]
// Prints "READY <port>" on stdout once listening; exits cleanly on SIGTERM.
'use strict';
require('reflect-metadata');
const fs = require('fs');
const { Controller, Module, Logger } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const {
  Transport, MessagePattern, EventPattern, RpcException, Payload, Ctx,
} = require('@nestjs/microservices');
const { Observable } = require('rxjs');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const receivedEvents = [];

class PeerController {
  echo(data) { return data; }
  sum(data) { return data.reduce((a, b) => a + b, 0); }
  mixedCase() { return 'mixed-case pattern reached'; }
  textLength(data) { return { length: data.length, text: data }; }
  notFound(data) {
    throw new RpcException({ statusCode: 404, message: `thing ${data} not found`, error: 'Not Found' });
  }
  crash() { throw new Error('kaboom'); }
  count(n) {
    return new Observable((subscriber) => {
      let i = 0;
      const next = () => {
        if (i >= n) { subscriber.complete(); return; }
        subscriber.next(i++);
        setImmediate(next);
      };
      next();
    });
  }
  recordEvent(data) { receivedEvents.push(data); }
  recordMixedCaseEvent(data) { receivedEvents.push({ mixedCase: data }); }
  events() { return receivedEvents; }
}

// Decorators applied by hand: this file is plain JavaScript, run without a compiler.
const method = (name) => Object.getOwnPropertyDescriptor(PeerController.prototype, name);
const decorate = (decorators, name) =>
  Reflect.decorate(decorators, PeerController.prototype, name, method(name));
decorate([MessagePattern('echo')], 'echo');
decorate([MessagePattern({ cmd: 'sum' })], 'sum');
decorate([MessagePattern({ b: 'x', A: 'y', a: 'z', B: 'w' })], 'mixedCase');
decorate([MessagePattern({ cmd: 'length' })], 'textLength');
decorate([MessagePattern({ cmd: 'notFound' })], 'notFound');
decorate([MessagePattern({ cmd: 'crash' })], 'crash');
decorate([MessagePattern({ cmd: 'count' })], 'count');
decorate([EventPattern('recorded')], 'recordEvent');
decorate([EventPattern({ b: 'x', A: 'y', a: 'z', B: 'w', kind: 'event' })], 'recordMixedCaseEvent');
decorate([MessagePattern({ cmd: 'events' })], 'events');
Reflect.decorate([Controller()], PeerController);

class PeerModule {}
Reflect.decorate([Module({ controllers: [PeerController] })], PeerModule);

async function main() {
  const port = Number(arg('port', '0'));
  const options = { host: '127.0.0.1', port };
  if (arg('tls-cert')) {
    options.tlsOptions = { cert: fs.readFileSync(arg('tls-cert')), key: fs.readFileSync(arg('tls-key')) };
  }
  const app = await NestFactory.createMicroservice(PeerModule, {
    transport: Transport.TCP,
    options,
    logger: process.env.NEST_LOGS ? ['log', 'error', 'warn'] : ['error'],
  });
  await app.listen();
  const address = app.unwrap().address();
  process.stdout.write(`READY ${address.port}\n`);
  const stop = async () => { await app.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => { Logger.error(error); process.exit(1); });
