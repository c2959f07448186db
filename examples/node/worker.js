#!/usr/bin/env node
// A Leasq worker in Node.js.
//
//   node worker.js --broker localhost:50051 --queues critical=6,default=3 --concurrency 4
//
// Logs one JSON line per event on stdout (ready, leased, started, acked, nacked, lost,
// dropped, stopping, stopped, ...). SIGTERM / SIGINT: lease nothing more, give running tasks
// --shutdown-grace, then give the rest back with Nack REQUEUE and exit.
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { brokerClient } from './lib/proto.js';
import { parseDurationMs, parseQueueWeights } from './lib/args.js';
import { exampleHandlers } from './lib/handlers.js';
import { Worker } from './lib/worker.js';

const USAGE = `usage: node worker.js [--broker host:port] [--queues q1=w1,q2=w2] [--strict]
  [--concurrency N] [--lease-duration 15s] [--poll-wait 5s] [--shutdown-grace 0s] [--worker-id ID]`;

function options() {
  const { values } = parseArgs({
    options: {
      broker: { type: 'string', default: process.env.LEASQ_BROKER || 'localhost:50051' },
      queues: { type: 'string', default: 'default' },
      strict: { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '4' },
      'lease-duration': { type: 'string', default: '15s' },
      'poll-wait': { type: 'string', default: '5s' },
      'shutdown-grace': { type: 'string', default: '0s' },
      'worker-id': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.error(USAGE);
    process.exit(0);
  }
  return values;
}

function jsonLogger(workerId) {
  return (event, fields) => {
    process.stdout.write(`${JSON.stringify({ event, ts: new Date().toISOString(), worker_id: workerId, ...fields })}\n`);
  };
}

function positiveInteger(text, flag) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a whole number >= 1, not ${text}`);
  return n;
}

async function main() {
  const o = options();
  const workerId = o['worker-id'] || `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const client = brokerClient(o.broker);
  const worker = new Worker({
    client,
    workerId,
    queues: parseQueueWeights(o.queues),
    strict: o.strict,
    concurrency: positiveInteger(o.concurrency, '--concurrency'),
    leaseDurationMs: parseDurationMs(o['lease-duration']),
    pollWaitMs: parseDurationMs(o['poll-wait']),
    shutdownGraceMs: parseDurationMs(o['shutdown-grace']),
    handlers: exampleHandlers(),
    log: jsonLogger(workerId),
  });
  process.on('SIGTERM', () => worker.stop());
  process.on('SIGINT', () => worker.stop());
  await worker.run();
  client.close();
}

main().catch((err) => {
  console.error(err?.stack ?? String(err));
  console.error(USAGE);
  process.exit(1);
});
