#!/usr/bin/env bash
# Generates Python stubs for Steward's gRPC API from proto/ into clients/python/gen/
# (git-ignored), or into the directory given as the first argument.
#
#   pip install -r clients/python/requirements.txt
#   clients/python/generate.sh            # uses $PYTHON, default python3
#
# `python -m grpc_tools.protoc` needs no system protoc and adds the google/protobuf/*.proto
# files that grpcio-tools bundles to the include path, so the well-known-type imports resolve.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/gen}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

cd "$here/../.."
"${PYTHON:-python3}" -m grpc_tools.protoc -I proto \
  --python_out="$out" --grpc_python_out="$out" \
  $(find proto/steward -name '*.proto' | sort)
echo "generated Python stubs in $out"
