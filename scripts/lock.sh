#!/usr/bin/env bash
# Regenerate requirements.lock (exact versions the tests ran with) from the current .venv.
# torch is pinned separately (CPU wheel here, CUDA wheel in the Docker image) and fls itself is editable.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# Exact tested versions; regenerate with scripts/lock.sh. torch is pinned in the Makefile / Dockerfile."
  .venv/bin/pip freeze --exclude-editable | grep -viE '^(torch|fls)=='
  echo "setuptools==$(.venv/bin/python -c 'import setuptools; print(setuptools.__version__)')"
} > requirements.lock
