#!/usr/bin/env bash
# Fetch the wheels a lent GPU machine lacks (its Python has torch, numpy, opencv, pandas, scipy, typer, ...,
# but not ale-py or gymnasium) into .whl/, at the versions of requirements.lock, for CPython 3.12 manylinux.
# Then benchmarks/device_check.sh runs there with `.whl` carried. See docs/scale_out.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
for name in ale-py gymnasium Farama-Notifications; do
  pin=$(grep -i "^${name}==" requirements.lock) || { echo "requirements.lock: no pin for ${name}" >&2; exit 2; }
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d .whl "$pin"
done
ls -1 .whl
