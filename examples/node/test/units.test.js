// Unit tests of the pure parts: flag parsing and decoding of the error details trailer.
import test from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import grpc from '@grpc/grpc-js';
import { parseDurationMs, parseHeaders, parseQueueWeights } from '../lib/args.js';
import { describeError } from '../lib/errors.js';
import { nackForError, RetryAfter, SkipRetry } from '../lib/outcome.js';
import { exampleHandlers } from '../lib/handlers.js';
import { groupMember } from '../lib/worker.js';

test('queue weights keep their order and default to 1', () => {
  assert.deepEqual(parseQueueWeights('critical=6,default=3,low'), [
    { queue: 'critical', weight: 6 },
    { queue: 'default', weight: 3 },
    { queue: 'low', weight: 1 },
  ]);
  assert.throws(() => parseQueueWeights('a=0'));
  assert.throws(() => parseQueueWeights(''));
});

test('durations accept ms, s, m, h, d and bare seconds', () => {
  assert.equal(parseDurationMs('250ms'), 250);
  assert.equal(parseDurationMs('1.5s'), 1500);
  assert.equal(parseDurationMs('2m'), 120_000);
  assert.equal(parseDurationMs('30'), 30_000);
  assert.throws(() => parseDurationMs('soon'));
});

test('headers split at the first equals sign', () => {
  assert.deepEqual(parseHeaders(['a=b=c', 'tenant=acme']), { a: 'b=c', tenant: 'acme' });
  assert.throws(() => parseHeaders(['novalue']));
});

test('handler errors map onto Nack actions', () => {
  assert.equal(nackForError(new Error('x')).action, 'NACK_ACTION_RETRY');
  assert.equal(nackForError(new SkipRetry('x')).action, 'NACK_ACTION_ARCHIVE');
  const later = nackForError(new RetryAfter('busy', 1500));
  assert.deepEqual([later.action, later.retry_after], ['NACK_ACTION_RETRY', { seconds: '1', nanos: 500_000_000 }]);
});

test('the ErrorInfo reason and BadRequest field are read from grpc-status-details-bin', () => {
  // Built with an independent schema, as the broker's googleapis types would serialize it.
  const root = protobuf.parse(`
    syntax = "proto3"; package google.rpc;
    message Any { string type_url = 1; bytes value = 2; }
    message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
    message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
    message FieldViolation { string field = 1; string description = 2; }
    message BadRequest { repeated FieldViolation field_violations = 1; }`, { keepCase: true }).root;
  const encode = (name, value) => root.lookupType(name).encode(value).finish();
  const status = encode('google.rpc.Status', {
    code: 3,
    message: 'queue: braces are not allowed',
    details: [
      { type_url: 'type.googleapis.com/google.rpc.ErrorInfo',
        value: encode('google.rpc.ErrorInfo', { reason: 'INVALID_FIELD', domain: 'leasq.v1' }) },
      { type_url: 'type.googleapis.com/google.rpc.BadRequest',
        value: encode('google.rpc.BadRequest', { field_violations: [{ field: 'task.queue', description: 'bad' }] }) },
    ],
  });
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(status));
  const info = describeError({ code: grpc.status.INVALID_ARGUMENT, details: 'x', metadata });
  assert.equal(info.code, 'INVALID_ARGUMENT');
  assert.equal(info.reason, 'INVALID_FIELD');
  assert.equal(info.domain, 'leasq.v1');
  assert.equal(info.message, 'queue: braces are not allowed');
  assert.deepEqual(info.field_violations, [{ field: 'task.queue', description: 'bad' }]);
});

test('a transport failure has a code and no reason', () => {
  const info = describeError({ code: grpc.status.UNAVAILABLE, details: 'connect failed', metadata: new grpc.Metadata() });
  assert.deepEqual([info.code, info.reason], ['UNAVAILABLE', '']);
});

test('the digest handler records every member of a batch, and a lone task as a batch of one', async () => {
  const digest = exampleHandlers().get('digest');
  const member = (id, n) => groupMember({
    id, payload: Buffer.from(JSON.stringify({ n })), headers: {}, enqueued_at: { seconds: '1700000000', nanos: 0 },
  });
  const batch = await digest({ id: 'agg', type: 'digest', group: 'user:1', payload: Buffer.alloc(0), members: [member('a', 1), member('b', 2)] });
  assert.deepEqual(batch.members, [{ id: 'a', payload: { n: 1 } }, { id: 'b', payload: { n: 2 } }]);
  assert.deepEqual([batch.group, batch.count], ['user:1', 2]);
  assert.equal(member('a', 1).enqueued_at.getTime(), 1_700_000_000_000);
  const lone = await digest({ id: 'solo', type: 'digest', group: '', payload: Buffer.from('{"n":3}'), headers: {}, members: [] });
  assert.deepEqual(lone.members, [{ id: 'solo', payload: { n: 3 } }]);
});
