#!/usr/bin/env bash
# Set up (if needed), then run the built-in demo: two registries on loopback,
# a dozen sample images, imageferry copy, then a check that proves the result.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m imageferry.testing.demo "$@"
