// Reads the machine-readable side of a refusal. The broker answers a refused call with a gRPC
// status code and, in the `grpc-status-details-bin` trailer, a serialized google.rpc.Status whose
// `details` hold a google.rpc.ErrorInfo (domain "leasq.v1", reason such as "TASK_ID_CONFLICT")
// and, for INVALID_ARGUMENT, a google.rpc.BadRequest naming the field.
//
// The google.rpc messages are not part of @grpc/proto-loader, and their wire format is fixed by
// googleapis (google/rpc/status.proto, google/rpc/error_details.proto). We declare the subset we
// read, with the same field numbers, and let protobufjs decode it.
import protobuf from 'protobufjs';
import grpc from '@grpc/grpc-js';

const GOOGLE_RPC_SUBSET = `
syntax = "proto3";
package google.rpc;
message Any { string type_url = 1; bytes value = 2; }
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
message BadRequest {
  message FieldViolation { string field = 1; string description = 2; }
  repeated FieldViolation field_violations = 1;
}
`;

const root = protobuf.parse(GOOGLE_RPC_SUBSET, { keepCase: true }).root;
const Status = root.lookupType('google.rpc.Status');
const ErrorInfo = root.lookupType('google.rpc.ErrorInfo');
const BadRequest = root.lookupType('google.rpc.BadRequest');

const TYPE_URL_PREFIX = 'type.googleapis.com/';
const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, n]) => [n, name]));

/** The name of a gRPC status code number, e.g. 6 -> "ALREADY_EXISTS". */
export function codeName(code) {
  return CODE_NAMES[code] ?? String(code);
}

/**
 * Describes a failed call: {code, message, domain, reason, metadata, field_violations}.
 * `reason` is '' when the broker sent no ErrorInfo (e.g. a transport error).
 */
export function describeError(err) {
  const out = {
    code: codeName(err.code),
    message: err.details ?? err.message,
    domain: '',
    reason: '',
    metadata: {},
    field_violations: [],
  };
  const raw = err.metadata?.get?.('grpc-status-details-bin') ?? [];
  if (raw.length === 0) return out;
  const status = Status.decode(Buffer.from(raw[0]));
  if (status.message) out.message = status.message;
  for (const any of status.details) {
    const typeName = any.type_url.startsWith(TYPE_URL_PREFIX)
      ? any.type_url.slice(TYPE_URL_PREFIX.length)
      : any.type_url;
    if (typeName === 'google.rpc.ErrorInfo') {
      const info = ErrorInfo.toObject(ErrorInfo.decode(any.value), { defaults: true });
      Object.assign(out, { domain: info.domain, reason: info.reason, metadata: info.metadata });
    } else if (typeName === 'google.rpc.BadRequest') {
      const bad = BadRequest.toObject(BadRequest.decode(any.value), { defaults: true });
      out.field_violations = bad.field_violations;
    }
  }
  return out;
}

/** True when a settle call failed because the lease is no longer ours (drop the task). */
export function isLeaseLost(err) {
  return err.code === grpc.status.FAILED_PRECONDITION || err.code === grpc.status.NOT_FOUND;
}

/** True for failures worth retrying with backoff (broker or Redis briefly unreachable). */
export function isRetryable(err) {
  return err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED;
}
