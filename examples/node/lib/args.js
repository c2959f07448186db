// Small parsers for the command-line values the producer and worker take.

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of "250ms", "30s", "5m", "2h", "7d" or a bare number of seconds. */
export function parseDurationMs(text) {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(text).trim());
  if (!match) throw new Error(`not a duration: ${JSON.stringify(text)} (try 30s, 5m, 250ms)`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? 's']);
}

/**
 * Queue weights from "critical=6,default=3" (a queue without "=N" gets weight 1), in the
 * order given, as leasq.v1.QueueWeight objects.
 */
export function parseQueueWeights(text) {
  const queues = String(text)
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const [queue, weight = '1'] = part.split('=');
      const n = Number(weight);
      if (!queue || !Number.isInteger(n) || n < 1) throw new Error(`bad queue weight: ${part}`);
      return { queue, weight: n };
    });
  if (queues.length === 0) throw new Error('at least one queue is needed');
  return queues;
}

/** Headers from repeated "key=value" flags. */
export function parseHeaders(pairs = []) {
  const headers = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`header must be key=value: ${pair}`);
    headers[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return headers;
}
