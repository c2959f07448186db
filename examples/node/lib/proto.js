// Loads the leasq.v1 contract from the repository's proto/ directory at run time, so there is no
// generated code to keep in sync: a change to the .proto files is picked up on the next start.
// The google/protobuf well-known types (Duration, Timestamp) ship with @grpc/proto-loader.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The proto/ directory: $LEASQ_PROTO_DIR, else the repository's proto/ next to examples/. */
export function protoDir() {
  return process.env.LEASQ_PROTO_DIR || path.resolve(HERE, '..', '..', '..', 'proto');
}

// keepCase: field names as written in the .proto (lease_token, not leaseToken), so that code
// reads like the contract. enums as their names, 64-bit integers as strings (Duration.seconds
// is int64), defaults filled in so that unset scalars read as 0 / '' / false.
const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached = null;

/** Returns the leasq.v1 package object: service client constructors and message types. */
export function leasqPackage() {
  if (!cached) {
    const dir = protoDir();
    const definition = protoLoader.loadSync(
      ['leasq/v1/broker_service.proto', 'leasq/v1/inspect_service.proto'],
      { ...LOADER_OPTIONS, includeDirs: [dir] },
    );
    cached = grpc.loadPackageDefinition(definition).leasq.v1;
  }
  return cached;
}

/** A BrokerService client on a plaintext channel (use grpc.credentials.createSsl() for TLS). */
export function brokerClient(address, credentials = grpc.credentials.createInsecure()) {
  return new (leasqPackage().BrokerService)(address, credentials);
}

/** An InspectService client on a plaintext channel. */
export function inspectClient(address, credentials = grpc.credentials.createInsecure()) {
  return new (leasqPackage().InspectService)(address, credentials);
}

/** Calls a unary method as a promise, with a deadline `timeoutMs` from now. */
export function call(client, method, request, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + timeoutMs);
    client[method](request, { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

/** google.protobuf.Duration from milliseconds. */
export function durationFromMs(ms) {
  const whole = Math.floor(ms / 1000);
  return { seconds: String(whole), nanos: Math.round((ms - whole * 1000) * 1e6) };
}

/** Milliseconds of a google.protobuf.Duration (null when unset). */
export function msFromDuration(d) {
  if (!d) return null;
  return Number(d.seconds) * 1000 + Math.floor((d.nanos || 0) / 1e6);
}

/** A Date from a google.protobuf.Timestamp (null when unset). */
export function dateFromTimestamp(ts) {
  if (!ts) return null;
  return new Date(Number(ts.seconds) * 1000 + Math.floor((ts.nanos || 0) / 1e6));
}

/** google.protobuf.Timestamp from a Date. */
export function timestampFromDate(date) {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1e6 };
}

export { grpc };
