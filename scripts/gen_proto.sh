#!/usr/bin/env bash
# Regenerates the Python code and .pyi stubs of the contract next to each .proto, so that the
# generated modules import as leasq.v1.*. Run through `make proto`; CI runs it and fails on drift.
# Generates into a scratch directory first, so running processes never see the modules missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
"$PY" -m grpc_tools.protoc -I proto \
  --python_out="$scratch" --mypy_out="$scratch" \
  --grpc_python_out="$scratch" --mypy_grpc_out="$scratch" \
  proto/leasq/v1/*.proto
for stale in proto/leasq/v1/*_pb2*.py proto/leasq/v1/*_pb2*.pyi; do
  [ -e "$scratch/leasq/v1/$(basename "$stale")" ] || rm -f "$stale"
done
for fresh in "$scratch"/leasq/v1/*; do
  cp "$fresh" "proto/leasq/v1/.$(basename "$fresh").tmp"
  mv "proto/leasq/v1/.$(basename "$fresh").tmp" "proto/leasq/v1/$(basename "$fresh")"
done
