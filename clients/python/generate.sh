#!/usr/bin/env bash
# Generates Python stubs for Steward's gRPC API from proto/ as the packages steward.<domain>.v1:
# into clients/python/ itself by default, beside the hand-written client in steward/ (the
# generated directories are git-ignored), or into the directory given as the first argument.
#
#   pip install -r clients/python/requirements.txt
#   clients/python/generate.sh              # uses $PYTHON, default python3
#   PYTHONPATH=clients/python python -c 'import steward'
#
# `pip install ./clients/python` does the same at build time (setup.py); this script is for
# working in a checkout. `python -m grpc_tools.protoc` needs no system protoc and adds the
# google/protobuf/*.proto files that grpcio-tools bundles to the include path, so the
# well-known-type imports resolve.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

cd "$here/../.."
protos=$(find proto/steward -name '*.proto' | sort)
"${PYTHON:-python3}" -m grpc_tools.protoc -I proto \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  $protos
# Every generated directory below steward/ becomes a regular package (steward/__init__.py itself
# is the hand-written client's and is never written here).
for p in $protos; do
  d="$(dirname "${p#proto/}")"
  while [ "$d" != steward ]; do
    touch "$out/$d/__init__.py"
    d="$(dirname "$d")"
  done
done
echo "generated Python stubs in $out"
