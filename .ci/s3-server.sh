#!/usr/bin/env bash
# The remote-store tests (tests/it/remote_*.rs) and `cargo bench --bench backup`
# talk to a real S3-compatible server on this machine: s3s-fs, a Rust S3
# server that keeps buckets as directories and checks SigV4 signatures (so
# wrong credentials fail as they do on AWS), with multipart uploads and
# conditional puts (If-None-Match). This script installs it once from
# crates.io into /opt/ward-ci/bin (reused by every later run; a few minutes of
# compiling the first time) and starts one instance on 127.0.0.1:$PORT with
# the test credentials below, unless one already answers there.
#
# The tests do not rely on that instance being up: each starts private
# servers of the same binary (on free ports, with their own data
# directories) so that one can be killed mid-upload without disturbing the
# others; they fail, naming this script, when the binary is missing.
set -euo pipefail

VERSION=0.14.1
ROOT=/opt/ward-ci
BIN="$ROOT/bin/s3s-fs"
PORT=${WARD_S3_PORT:-39014}
DATA=${WARD_S3_DATA:-/tmp/ward-ci-s3}

if ! [ -x "$BIN" ] || ! grep -q "s3s-fs $VERSION" "$ROOT/.crates.toml" 2>/dev/null; then
  mkdir -p "$ROOT"
  cargo install s3s-fs --version "$VERSION" --features binary --locked --root "$ROOT"
fi

if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  mkdir -p "$DATA/ward-ci"
  nohup "$BIN" --host 127.0.0.1 --port "$PORT" \
    --access-key ward-test-key --secret-key ward-test-secret-key "$DATA" \
    >/tmp/ward-ci-s3.log 2>&1 &
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
  done
fi
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || { echo "s3s-fs did not start (see /tmp/ward-ci-s3.log)" >&2; exit 1; }
echo "s3s-fs $VERSION on http://127.0.0.1:$PORT (bucket ward-ci, data in $DATA)"
