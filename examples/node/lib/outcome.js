// How a handler tells the worker what to do with a failed task, and how that maps onto Nack.
//   return a value      -> Ack, with the value as the task's result
//   throw SkipRetry     -> Nack ARCHIVE (retrying cannot help: dead-letter it now)
//   throw RetryAfter    -> Nack RETRY with retry_after instead of the broker's backoff
//   throw anything else -> Nack RETRY (the broker archives once max_retry is spent)
import { durationFromMs } from './proto.js';

/** Thrown by a handler when retrying cannot help (bad payload, permanent refusal). */
export class SkipRetry extends Error {
  constructor(message) {
    super(message);
    this.name = 'SkipRetry';
  }
}

/** Thrown by a handler that wants to be retried after a given delay. */
export class RetryAfter extends Error {
  constructor(message, delayMs) {
    super(message);
    this.name = 'RetryAfter';
    this.delayMs = delayMs;
  }
}

/** Result bytes for Ack: Buffers as they are, strings as UTF-8, anything else as JSON. */
export function encodeResult(value) {
  if (value === undefined || value === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** The NackItem fields (without `lease`) for an error thrown by a handler. */
export function nackForError(err) {
  const error = String(err?.message ?? err);
  const error_type = err?.name ?? err?.constructor?.name ?? 'Error';
  if (err instanceof SkipRetry) return { action: 'NACK_ACTION_ARCHIVE', error, error_type };
  if (err instanceof RetryAfter) {
    return {
      action: 'NACK_ACTION_RETRY',
      error,
      error_type,
      retry_after: durationFromMs(err.delayMs),
    };
  }
  return { action: 'NACK_ACTION_RETRY', error, error_type };
}
