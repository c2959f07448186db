#!/usr/bin/env bash
# Fails when the contract in proto/ breaks wire or JSON compatibility with an earlier contract
# (the rules of `breaking:` in buf.yaml: WIRE_JSON, plus no deleted services or RPCs).
#
# Within one major version (package leasq.v1) clients built from any earlier .proto must keep
# working, so the working tree's proto/ is compared with every earlier commit that changed
# proto/ (the most recent $BREAKING_MAX_REFS of them, default 20), not only with HEAD~1: a
# submission of several commits cannot hide a break in an earlier one. A wire-incompatible
# change needs a new package (proto/leasq/v2, package leasq.v2); retiring leasq.v1 by deleting
# its files is not reported.
#
# BREAKING_AGAINST=<git ref> compares with that one ref instead (e.g. origin/main in review).
# Nothing to compare with (first commit, a shallow clone without history, no earlier proto/):
# the check is skipped with a message and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF="${BUF:-}"
if [[ -z "$BUF" ]]; then
  if [[ -x .venv/bin/buf ]]; then BUF=.venv/bin/buf
  elif command -v buf >/dev/null 2>&1; then BUF=buf
  else
    echo "check_breaking: buf not found (pip install -e '.[dev]' installs buf-bin)" >&2
    exit 2
  fi
fi

refs=()
if [[ -n "${BREAKING_AGAINST:-}" ]]; then
  refs=("$(git rev-parse --verify "${BREAKING_AGAINST}^{commit}")")
elif ! git rev-parse --verify --quiet 'HEAD~1^{commit}' >/dev/null; then
  reason="HEAD has no parent"
  [[ "$(git rev-parse --is-shallow-repository)" == true ]] && reason="shallow clone without history"
  echo "check_breaking: skipped: no earlier commit to compare with ($reason)"
  exit 0
else
  mapfile -t refs < <(git log --format=%H -n "${BREAKING_MAX_REFS:-20}" 'HEAD~1' -- proto)
fi

if [[ ${#refs[@]} -eq 0 ]]; then
  echo "check_breaking: skipped: no earlier commit has a proto/ directory"
  exit 0
fi

failed=0
for ref in "${refs[@]}"; do
  short="$(git rev-parse --short "$ref")"
  if ! git ls-tree -r --name-only "$ref" -- proto | grep -q '\.proto$'; then
    echo "check_breaking: $short has no .proto files under proto/: nothing to compare"
    continue
  fi
  if "$BUF" breaking proto --against ".git#ref=${ref},subdir=proto"; then
    echo "check_breaking: compatible with the contract of $short"
  else
    echo "check_breaking: BREAKING change against the contract of $short" \
      "($(git log -1 --format=%s "$ref"))" >&2
    failed=1
  fi
done

if [[ $failed -ne 0 ]]; then
  echo "check_breaking: proto/ breaks leasq.v1 clients. Keep the change compatible (add fields" \
    "and RPCs, reserve deleted numbers and names) or publish it as a new package leasq.v2." >&2
  exit 1
fi
