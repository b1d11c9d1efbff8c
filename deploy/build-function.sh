#!/usr/bin/env bash
# Build the Rust reference function (functions/kinesis-to-dynamodb) for AWS Lambda
# and package it as deploy/build/kinesis-to-dynamodb.zip, ready for
# `terraform apply` in deploy/terraform (its default `function_zip`).
#
# Usage:
#   deploy/build-function.sh                                      # host target
#   TARGET=x86_64-unknown-linux-musl deploy/build-function.sh     # static binary
#   TARGET=aarch64-unknown-linux-musl deploy/build-function.sh    # for arm64
#       (then apply with -var function_architecture=arm64)
#   BINARY=path/to/bootstrap deploy/build-function.sh             # zip only
#
# Which binary runs on Lambda: the provided.al2023 runtime is Amazon Linux 2023,
# whose glibc is 2.34. A binary linked against a newer glibc (any recent desktop
# distribution) fails there at start-up with "GLIBC_2.xx not found". The safe
# choices are:
#   * a musl target (`rustup target add x86_64-unknown-linux-musl`, then
#     TARGET=x86_64-unknown-linux-musl), which links statically; or
#   * cargo-lambda, the tool AWS recommends for Rust functions:
#       cargo lambda build --release -p kinesis-to-dynamodb [--arm64]
#     It cross-compiles with zig against the right glibc; pass the binary it
#     leaves in target/lambda/bootstrap/bootstrap to this script via BINARY=...
#     (or zip it with `cargo lambda build --output-format zip`).
# The TARGET architecture must match `function_architecture` (x86_64 or arm64).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out_dir="$here/build"
zip_path="$out_dir/kinesis-to-dynamodb.zip"

if [[ -z "${BINARY:-}" ]]; then
    cd "$root"
    if [[ -n "${TARGET:-}" ]]; then
        cargo build --release -p kinesis-to-dynamodb --bin bootstrap --target "$TARGET"
        BINARY="$root/target/$TARGET/release/bootstrap"
    else
        cargo build --release -p kinesis-to-dynamodb --bin bootstrap
        BINARY="$root/target/release/bootstrap"
    fi
fi

if [[ ! -f "$BINARY" ]]; then
    echo "build-function.sh: no binary at $BINARY" >&2
    exit 1
fi

mkdir -p "$out_dir"
# python3's zipfile rather than `zip`, which is not installed everywhere. Lambda
# runs the entry named exactly `bootstrap` at the root of the archive, and it must
# carry the executable bit (the Unix mode lives in the high 16 bits of
# external_attr). The timestamp is fixed so that rebuilding an identical binary
# gives an identical zip and Terraform's source_code_hash does not change.
python3 - "$BINARY" "$zip_path" <<'PY'
import sys
import zipfile

binary, zip_path = sys.argv[1], sys.argv[2]
with open(binary, "rb") as f:
    data = f.read()
entry = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
entry.external_attr = (0o100755 << 16)  # regular file, rwxr-xr-x
entry.create_system = 3  # Unix, so the mode bits are honoured
entry.compress_type = zipfile.ZIP_DEFLATED
with zipfile.ZipFile(zip_path, "w") as z:
    z.writestr(entry, data)
PY

echo "built $zip_path ($(wc -c < "$zip_path") bytes) from $BINARY"
