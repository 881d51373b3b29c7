#!/usr/bin/env bash
# Set up (if needed), then lint, type-check and run the whole test suite
# against real registries on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check src tests
.venv/bin/mypy
exec .venv/bin/python -m pytest tests "$@"
