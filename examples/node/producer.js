#!/usr/bin/env node
// Enqueues one Leasq task and prints the broker's answer as JSON.
//
//   node producer.js --type email:welcome --payload '{"to":"ada@example.com"}' \
//     --queue critical --task-id welcome-ada --process-in 30s --max-retry 3 \
//     --unique-ttl 1h --retention 1d --header tenant=acme
//
// Exit status 0: stdout holds the EnqueuedTask. Exit status 2: the broker refused the task;
// stdout holds {"error": {code, reason, message, ...}} with the google.rpc.ErrorInfo reason
// (e.g. TASK_ID_CONFLICT, DUPLICATE_TASK, INVALID_FIELD) and stderr a one-line explanation.
// Exit status 1: the call failed without a refusal (broker unreachable, bad flags).
import { parseArgs } from 'node:util';
import { brokerClient, call, durationFromMs, timestampFromDate } from './lib/proto.js';
import { parseDurationMs, parseHeaders } from './lib/args.js';
import { describeError } from './lib/errors.js';

const USAGE = `usage: node producer.js --type TYPE [--payload TEXT] [--broker host:port] [--queue Q]
  [--task-id ID] [--max-retry N] [--timeout 30s] [--deadline ISO-8601] [--process-in 10s |
  --process-at ISO-8601] [--unique-ttl 1h] [--unique-key K] [--retention 1d] [--group G]
  [--header key=value ...]`;

function options() {
  const { values } = parseArgs({
    options: {
      broker: { type: 'string', default: process.env.LEASQ_BROKER || 'localhost:50051' },
      type: { type: 'string' },
      payload: { type: 'string', default: '' },
      queue: { type: 'string', default: '' },
      'task-id': { type: 'string', default: '' },
      'max-retry': { type: 'string' },
      timeout: { type: 'string' },
      deadline: { type: 'string' },
      'process-in': { type: 'string' },
      'process-at': { type: 'string' },
      'unique-ttl': { type: 'string' },
      'unique-key': { type: 'string', default: '' },
      retention: { type: 'string' },
      group: { type: 'string', default: '' },
      header: { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || !values.type) {
    console.error(USAGE);
    process.exit(values.help ? 0 : 64);
  }
  return values;
}

/** A leasq.v1.TaskSpec from the flags; unset options stay unset so the broker's defaults apply. */
function taskSpec(o) {
  const spec = {
    type: o.type,
    payload: Buffer.from(o.payload, 'utf8'),
    headers: parseHeaders(o.header),
    queue: o.queue,
    task_id: o['task-id'],
    unique_key: o['unique-key'],
    group: o.group,
  };
  if (o['max-retry'] !== undefined) spec.max_retry = Number(o['max-retry']);
  const durations = { timeout: 'timeout', 'process-in': 'process_in', 'unique-ttl': 'unique_ttl', retention: 'retention' };
  for (const [flag, field] of Object.entries(durations)) {
    if (o[flag] !== undefined) spec[field] = durationFromMs(parseDurationMs(o[flag]));
  }
  if (o.deadline) spec.deadline = timestampFromDate(instant(o.deadline, '--deadline'));
  if (o['process-at']) spec.process_at = timestampFromDate(instant(o['process-at'], '--process-at'));
  if (spec.payload.length > 0 && !spec.headers['content-type'] && looksLikeJson(o.payload)) {
    spec.headers['content-type'] = 'application/json';
  }
  return spec;
}

function instant(text, flag) {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new Error(`${flag} needs an ISO-8601 instant, not ${text}`);
  return date;
}

function looksLikeJson(text) {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

async function main() {
  const o = options();
  const request = { task: taskSpec(o) };
  const client = brokerClient(o.broker);
  try {
    const response = await call(client, 'Enqueue', request);
    process.stdout.write(`${JSON.stringify(response.task)}\n`);
  } catch (err) {
    const info = describeError(err);
    process.stdout.write(`${JSON.stringify({ error: info })}\n`);
    const field = info.field_violations.map((v) => ` [${v.field}: ${v.description}]`).join('');
    // A refusal carries an ErrorInfo reason; a transport failure (broker down) does not.
    const verdict = info.reason ? 'refused' : 'failed';
    console.error(`${verdict}: ${info.code} ${info.reason || '(no reason)'}: ${info.message}${field}`);
    process.exitCode = info.reason ? 2 : 1;
  } finally {
    client.close();
  }
}

main().catch((err) => {
  console.error(`error: ${err?.message ?? err}`);
  console.error(USAGE);
  process.exit(1);
});
