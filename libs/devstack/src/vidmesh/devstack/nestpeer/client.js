// A real NestJS ClientProxy (TCP transporter) that runs a scenario, for vidmesh's interop tests.
// Usage: node client.js --port N [--host H] [--timeout MS] [--calls FILE] [--tls JSON]
//
// --tls '{"key": FILE, "cert": FILE, "ca": FILE, "servername": NAME}' connects over mutual TLS
// with Nest's own `tlsOptions` (the certificate presented, the CA trusted, the name verified).
//
// Reads a JSON list of calls from FILE (or stdin), runs them in order over one connection, prints
// one JSON line holding a list with one result per call, and exits 0. A call is
//   {"kind": "send",   "pattern": P, "data": D}  lastValueFrom(client.send(P, D)): the (last) answer
//   {"kind": "stream", "pattern": P, "data": D}  client.send(P, D).pipe(toArray()): every item
//   {"kind": "emit",   "pattern": P, "data": D}  client.emit(P, D): null once it is written
//   {"kind": "parallel", "calls": [...]}         the calls at once; "ok" holds their results
// with an optional "timeout" (ms, default --timeout). A result is {"ok": value}, or {"err": e}
// where e is the error exactly as the server sent it (an object or a string); an error raised on
// this side (a timeout, a closed connection, an invalid call) is {"err": "Name: message",
// "local": true}.
'use strict';
const fs = require('fs');
const { ClientProxyFactory, Transport } = require('@nestjs/microservices');
const { lastValueFrom, timeout, toArray } = require('rxjs');

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
      case 'emit': {
        const sent = client.emit(call.pattern, call.data).pipe(timeout(ms));
        await lastValueFrom(sent, { defaultValue: null });
        return { ok: null };
      }
      case 'parallel':
        return { ok: await Promise.all(call.calls.map((c) => run(client, c, defaultTimeout))) };
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

async function main() {
  const calls = readCalls();
  const defaultTimeout = Number(arg('timeout', '10000'));
  const options = { host: arg('host', '127.0.0.1'), port: Number(arg('port')) };
  const tls = arg('tls');
  if (tls !== undefined) {
    const files = JSON.parse(tls);
    options.tlsOptions = {
      key: fs.readFileSync(files.key),
      cert: fs.readFileSync(files.cert),
      ca: fs.readFileSync(files.ca),
      servername: files.servername,
    };
  }
  const client = ClientProxyFactory.create({ transport: Transport.TCP, options });
  const results = [];
  for (const call of calls) {
    results.push(await run(client, call, defaultTimeout));
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
  // Ends the connection after what was written (events included) has gone out; Node then exits
  // by itself. The unref'd timer only fires if something still keeps the process alive.
  client.close();
  setTimeout(() => process.exit(0), 2000).unref();
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
