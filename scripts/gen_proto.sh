#!/usr/bin/env bash
# Regenerates the Python code and .pyi stubs of the contract next to each .proto, so that the
# generated modules import as leasq.v1.*. Run through `make proto`; CI runs it and fails on drift.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
rm -f proto/leasq/v1/*_pb2*.py proto/leasq/v1/*_pb2*.pyi
"$PY" -m grpc_tools.protoc -I proto \
  --python_out=proto --mypy_out=proto \
  --grpc_python_out=proto --mypy_grpc_out=proto \
  proto/leasq/v1/*.proto
