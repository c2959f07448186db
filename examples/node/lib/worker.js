// A Leasq worker: the lease loop of broker_service.proto, step by step.
//   1. Lease up to (free slots) tasks from weighted queues, long-polling.
//   2. Run each task's handler; abort it at attempt_deadline.
//   3. Heartbeat all held leases every lease_duration / 3; a LOST lease aborts its handler and
//      nothing is reported for it; CANCEL_REQUESTED aborts it and archives it as "canceled".
//   4. Ack with the handler's result, or Nack (RETRY / ARCHIVE / REQUEUE), always presenting
//      the lease token (fencing). FAILED_PRECONDITION / NOT_FOUND: the task is not ours: drop it.
//   5. Retry Ack/Nack on UNAVAILABLE until the lease expires.
//   On stop (SIGTERM): lease nothing more, give running handlers `shutdownGraceMs`, then Nack
//   REQUEUE whatever is still held, and resolve run().
//   Every Lease and Heartbeat carries `worker` (WorkerMeta: host, pid, concurrency, started_at,
//   sdk) for the operators' ListWorkers; a heartbeat goes out every interval even with nothing
//   held. An answer's `command` is an operator's: WORKER_COMMAND_QUIET stops leasing (held
//   tasks finish, heartbeats go on, the worker stays up); WORKER_COMMAND_STOP is handled as
//   SIGTERM.
import os from 'node:os';
import { call, dateFromTimestamp, durationFromMs, timestampFromDate } from './proto.js';
import { describeError, isLeaseLost, isRetryable } from './errors.js';
import { encodeResult, nackForError } from './outcome.js';

const ABORT_LOST = 'lost';
const ABORT_CANCELED = 'canceled';
const ABORT_TIMEOUT = 'timeout';
const ABORT_SHUTDOWN = 'shutdown';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Worker {
  /**
   * @param {object} o
   * @param {object} o.client BrokerService client (lib/proto.js brokerClient)
   * @param {string} o.workerId
   * @param {{queue: string, weight: number}[]} o.queues
   * @param {Map<string, Function>} o.handlers task type (or type prefix) -> async handler
   * @param {(event: string, fields: object) => void} o.log
   */
  constructor(o) {
    this.client = o.client;
    this.workerId = o.workerId;
    this.queues = o.queues;
    this.strict = Boolean(o.strict);
    this.concurrency = o.concurrency ?? 4;
    this.leaseDurationMs = o.leaseDurationMs ?? 15_000;
    this.pollWaitMs = o.pollWaitMs ?? 5_000;
    this.shutdownGraceMs = o.shutdownGraceMs ?? 0;
    this.handlers = o.handlers;
    this.log = o.log;
    this.held = new Map(); // "queue\0id" -> entry of a task we hold a lease on
    this.stopping = false;
    this.wakeLoop = () => {};
    this.heartbeatInFlight = false;
    this.quiet = false;
    this.meta = {
      host: os.hostname(),
      pid: process.pid,
      concurrency: this.concurrency,
      started_at: timestampFromDate(new Date()),
      sdk: `node/${process.versions.node}`,
    };
  }

  /** Leases and runs tasks until stop() is called and every held task is settled. */
  async run() {
    const timer = setInterval(() => this.heartbeat(), Math.max(100, this.leaseDurationMs / 3));
    this.log('ready', { queues: this.queues, concurrency: this.concurrency });
    try {
      while (!this.stopping) {
        await this.waitForFreeSlot();
        if (!this.stopping && !this.quiet) await this.leaseOnce();
      }
      await this.drain();
    } finally {
      clearInterval(timer);
    }
    this.log('stopped', {});
  }

  /** Stops leasing; run() then drains held tasks and returns. Safe to call twice. */
  stop() {
    if (this.stopping) return;
    this.stopping = true;
    this.log('stopping', { held: this.held.size });
    this.wakeLoop();
  }

  /** An operator's command from a Lease or Heartbeat answer (each acted on once). */
  applyCommand(command) {
    if (command === 'WORKER_COMMAND_STOP' && !this.stopping) {
      this.log('stop_requested', {});
      this.stop();
    } else if (command === 'WORKER_COMMAND_QUIET' && !this.quiet) {
      this.quiet = true;
      this.log('quiet', { held: this.held.size });
    }
  }

  waitForFreeSlot() {
    if (this.stopping) return Promise.resolve();
    if (!this.quiet && this.held.size < this.concurrency) return Promise.resolve();
    return new Promise((resolve) => {
      this.wakeLoop = resolve;
    });
  }

  async leaseOnce() {
    const request = {
      worker_id: this.workerId,
      queues: this.queues,
      strict: this.strict,
      max_tasks: this.concurrency - this.held.size,
      lease_duration: durationFromMs(this.leaseDurationMs),
      wait: durationFromMs(this.pollWaitMs),
      worker: this.meta,
    };
    let response;
    try {
      // The call deadline must be above `wait`, or a quiet queue looks like a broker failure.
      response = await call(this.client, 'Lease', request, this.pollWaitMs + 10_000);
    } catch (err) {
      this.log('rpc_error', { rpc: 'Lease', ...describeError(err) });
      await sleep(1_000); // back off, then lease again; a stop() in between ends the loop
      return;
    }
    this.applyCommand(response.command);
    for (const task of response.tasks) this.start(task);
  }

  /** Takes ownership of one leased task and runs it in the background. */
  start(task) {
    const key = `${task.queue}\0${task.id}`;
    const entry = {
      task,
      ref: { queue: task.queue, task_id: task.id, lease_token: task.lease_token },
      expiresAt: dateFromTimestamp(task.lease_expires_at),
      controller: new AbortController(),
    };
    this.held.set(key, entry);
    this.log('leased', taskFields(task, { retried: task.retried, lease_lost_count: task.lease_lost_count }));
    this.execute(entry)
      .catch((err) => this.log('worker_error', taskFields(task, { error: String(err?.stack ?? err) })))
      .finally(() => {
        this.held.delete(key);
        this.wakeLoop();
      });
    // A stop() that raced with this Lease call: the drain gives the task back.
    if (this.stopping) this.wakeLoop();
  }

  async execute(entry) {
    const { task, controller } = entry;
    const deadline = dateFromTimestamp(task.attempt_deadline);
    const deadlineTimer = deadline
      ? setTimeout(() => controller.abort(ABORT_TIMEOUT), Math.max(0, deadline - Date.now()))
      : null;
    let outcome;
    try {
      outcome = await this.runHandler(entry, deadline);
    } finally {
      if (deadlineTimer) clearTimeout(deadlineTimer);
    }
    await this.settle(entry, outcome);
  }

  /** Runs the handler; returns {ack: result} or {nack: fields} or {drop: reason}. */
  async runHandler(entry, deadline) {
    const { task, controller } = entry;
    const handler = this.findHandler(task.type);
    if (!handler) {
      // Same policy as the Python runtime: a type nobody handles is archived, not retried.
      const error = `no handler registered for task type ${task.type}`;
      return { nack: { action: 'NACK_ACTION_ARCHIVE', error, error_type: 'UnknownTaskType' } };
    }
    if (this.stopping) return abortOutcome(ABORT_SHUTDOWN, task);
    const members = (task.members ?? []).map(groupMember);
    this.log('started', taskFields(task, {
      payload: task.payload.toString('utf8'),
      headers: task.headers,
      retried: task.retried,
      max_retry: task.max_retry,
      ...(task.group ? { group: task.group, member_ids: members.map((m) => m.id) } : {}),
    }));
    const aborted = new Promise((resolve) => {
      controller.signal.addEventListener('abort', () => resolve({ aborted: controller.signal.reason }), { once: true });
    });
    const ctx = {
      id: task.id,
      queue: task.queue,
      type: task.type,
      payload: task.payload,
      headers: task.headers,
      retried: task.retried,
      max_retry: task.max_retry,
      attempt_deadline: deadline,
      signal: controller.signal,
      // A task made by aggregation (TaskSpec.group) carries its members, in joining order, and
      // an empty payload; an Ack or Nack of the task settles every member at once.
      group: task.group,
      members,
    };
    // A handler that ignores its signal is abandoned at the abort: its late result is not sent.
    const ran = Promise.resolve()
      .then(() => handler(ctx)) // a plain function that throws counts as a failed attempt too
      .then((result) => ({ result }), (error) => ({ error }));
    const first = await Promise.race([ran, aborted]);
    if ('aborted' in first) return abortOutcome(first.aborted, task);
    if ('error' in first) return { nack: nackForError(first.error) };
    return { ack: encodeResult(first.result) };
  }

  findHandler(type) {
    if (this.handlers.has(type)) return this.handlers.get(type);
    let best = null;
    for (const [prefix, handler] of this.handlers) {
      if (type.startsWith(prefix) && (!best || prefix.length > best[0].length)) best = [prefix, handler];
    }
    return best ? best[1] : null;
  }

  /** Reports the outcome with the lease token, retrying transient failures until lease expiry. */
  async settle(entry, outcome) {
    const { task, ref } = entry;
    entry.settling = true; // from here on the Ack/Nack answer, not a heartbeat, says if we lost it
    if (outcome.drop) {
      this.log('dropped', taskFields(task, { reason: outcome.drop }));
      return;
    }
    const [rpc, request] = outcome.ack
      ? ['Ack', { worker_id: this.workerId, items: [{ lease: ref, result: outcome.ack }] }]
      : ['Nack', { worker_id: this.workerId, items: [{ lease: ref, ...outcome.nack }] }];
    for (let backoff = 100; ; backoff = Math.min(backoff * 2, 2_000)) {
      try {
        await call(this.client, rpc, request);
        const fields = outcome.nack ?? { result: outcome.ack.toString('utf8') };
        this.log(rpc === 'Ack' ? 'acked' : 'nacked', taskFields(task, fields));
        return;
      } catch (err) {
        const info = describeError(err);
        if (isLeaseLost(err)) {
          this.log('lost', taskFields(task, { during: rpc, reason: info.reason }));
          return;
        }
        if (!isRetryable(err) || Date.now() + backoff > entry.expiresAt) {
          this.log('settle_failed', taskFields(task, { rpc, ...info }));
          return; // the lease will expire and the broker will hand the task out again
        }
        await sleep(backoff);
      }
    }
  }

  /** One Heartbeat for every held lease (none held: it still tells the broker we are alive);
   * acts on LOST, CANCEL_REQUESTED and an operator's command. */
  async heartbeat() {
    if (this.heartbeatInFlight) return;
    this.heartbeatInFlight = true;
    const entries = [...this.held.values()];
    try {
      const response = await call(this.client, 'Heartbeat', {
        worker_id: this.workerId,
        leases: entries.map((e) => e.ref),
        worker: this.meta,
      });
      this.applyCommand(response.command);
      response.leases.forEach((state, i) => this.applyLeaseState(entries[i], state));
    } catch (err) {
      this.log('rpc_error', { rpc: 'Heartbeat', ...describeError(err) });
    } finally {
      this.heartbeatInFlight = false;
    }
  }

  applyLeaseState(entry, state) {
    if (state.status === 'LEASE_STATUS_EXTENDED') {
      entry.expiresAt = dateFromTimestamp(state.lease_expires_at);
    } else if (state.status === 'LEASE_STATUS_LOST') {
      // A heartbeat that crossed our own Ack/Nack sees the settled task as lost: not news.
      if (entry.settling) return;
      this.log('lost', taskFields(entry.task, { during: 'Heartbeat' }));
      entry.controller.abort(ABORT_LOST);
    } else if (state.status === 'LEASE_STATUS_CANCEL_REQUESTED') {
      entry.expiresAt = dateFromTimestamp(state.lease_expires_at);
      this.log('cancel_requested', taskFields(entry.task, {}));
      entry.controller.abort(ABORT_CANCELED);
    }
  }

  /** After stop(): give handlers the grace period, then requeue what is still held. */
  async drain() {
    const deadline = Date.now() + this.shutdownGraceMs;
    while (this.held.size > 0 && Date.now() < deadline) {
      await Promise.race([new Promise((r) => { this.wakeLoop = r; }), sleep(deadline - Date.now())]);
    }
    for (const entry of this.held.values()) entry.controller.abort(ABORT_SHUTDOWN);
    while (this.held.size > 0) await new Promise((r) => { this.wakeLoop = r; });
  }
}

/**
 * What to report for a handler stopped by `reason` (see the loop at the top of this file).
 * Error types match the Python runtime's, so operators see one vocabulary whatever the language.
 */
function abortOutcome(reason, task) {
  const archive = (error, error_type) => ({ nack: { action: 'NACK_ACTION_ARCHIVE', error, error_type } });
  switch (reason) {
    case ABORT_LOST:
      return { drop: ABORT_LOST };
    case ABORT_CANCELED:
      return archive('canceled', 'TaskCanceled');
    case ABORT_TIMEOUT: {
      // Past the task's absolute deadline no later attempt may run; a per-attempt timeout may.
      const deadline = dateFromTimestamp(task.deadline);
      if (deadline && Date.now() >= deadline.getTime()) return archive('deadline exceeded', 'DeadlineExceeded');
      return { nack: { action: 'NACK_ACTION_RETRY', error: 'attempt timed out', error_type: 'TaskTimeout' } };
    }
    default:
      return { nack: { action: 'NACK_ACTION_REQUEUE', error: 'worker shutting down', error_type: 'Requeued' } };
  }
}

/** A GroupMember as handlers see it: {id, payload (Buffer), headers, enqueued_at (Date)}. */
export function groupMember(m) {
  return { id: m.id, payload: m.payload, headers: m.headers, enqueued_at: dateFromTimestamp(m.enqueued_at) };
}

function taskFields(task, extra) {
  return { task_id: task.id, queue: task.queue, type: task.type, ...extra };
}
