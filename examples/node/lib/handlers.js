// The example handlers this worker registers, one per task type. A handler gets
// {id, queue, type, payload (Buffer), headers, retried, max_retry, attempt_deadline, signal,
//  group, members} and returns the task's result, or throws (see lib/outcome.js for what each
// error means). For a task made by aggregation (enqueued with a group), `group` is the group key
// and `members` its tasks in joining order: [{id, payload (Buffer), headers, enqueued_at}].
import { RetryAfter, SkipRetry } from './outcome.js';

/** Parses a JSON payload; a payload that is not JSON can never succeed, so it is not retried. */
function jsonPayload(ctx) {
  try {
    return JSON.parse(ctx.payload.toString('utf8') || '{}');
  } catch {
    throw new SkipRetry(`payload of ${ctx.type} is not JSON`);
  }
}

/** Resolves after `ms`, or rejects as soon as the task's signal aborts (lease lost, cancel). */
function interruptibleDelay(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new Error(`interrupted: ${signal.reason}`));
    }, { once: true });
  });
}

/** email:welcome — succeeds; the result names the recipient. */
async function emailWelcome(ctx) {
  const { to } = jsonPayload(ctx);
  if (!to) throw new SkipRetry('email:welcome needs "to"');
  return { sent_to: to, by: 'node', attempt: ctx.retried + 1 };
}

/** report:generate — works for payload.ms milliseconds (stoppable), then succeeds. */
async function reportGenerate(ctx) {
  const { ms = 100 } = jsonPayload(ctx);
  await interruptibleDelay(ms, ctx.signal);
  return { pages: 3, by: 'node' };
}

/** flaky:fetch — always fails and asks for a retry (after payload.retry_after_ms if given). */
async function flakyFetch(ctx) {
  const { retry_after_ms: retryAfterMs } = jsonPayload(ctx);
  if (retryAfterMs !== undefined) throw new RetryAfter('upstream is rate limiting', retryAfterMs);
  throw new Error('upstream answered 503');
}

/** image:resize — refuses a payload without a url: retrying cannot help, so archive it. */
async function imageResize(ctx) {
  const { url } = jsonPayload(ctx);
  if (!url) throw new SkipRetry('image:resize needs "url"; archiving');
  return { url, width: 128 };
}

/**
 * digest — one batch of a group: records every member (id and JSON payload) in the result. A
 * digest task enqueued without a group is a batch of one: itself.
 */
async function digest(ctx) {
  const items = ctx.members.length > 0
    ? ctx.members
    : [{ id: ctx.id, payload: ctx.payload, headers: ctx.headers }];
  const members = items.map((m) => ({ id: m.id, payload: jsonPayload({ ...ctx, payload: m.payload }) }));
  return { group: ctx.group, count: members.length, members, by: 'node' };
}

/** Task type -> handler. The worker matches exact types first, then the longest prefix. */
export function exampleHandlers() {
  return new Map([
    ['email:welcome', emailWelcome],
    ['report:generate', reportGenerate],
    ['flaky:fetch', flakyFetch],
    ['image:resize', imageResize],
    ['digest', digest],
  ]);
}
