#!/usr/bin/env bash
# Runs a command with the project's toolchain (Node 24, pnpm) first on PATH, installing it if needed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$LOOKSTREAM_ROOT"
exec "$@"
