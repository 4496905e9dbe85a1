#!/usr/bin/env bash
# `npm test`: install what is missing, then lint, typecheck and run every test.
# Ends with the plain line "N passed, N failed[, N skipped]" and exits non-zero on any failure.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh" || exit 1
# bootstrap.sh runs with errexit; a failing step must not end the run before the closing line.
set +e
cd "$LOOKSTREAM_ROOT"

status=0
step() { printf '\n== %s\n' "$*"; }

step "format:check"; pnpm run -s format:check || status=1
step "typecheck"; pnpm run -s typecheck || status=1
step "lint"; pnpm run -s lint || status=1
step "generated files are up to date"; pnpm run -s schemas:check || status=1; pnpm run -s dashboards:check || status=1; pnpm run -s deploy:check || status=1
# Reported, not failing: packages that land with a dependency declared for work still to come are listed
# here; `pnpm run deps:check` exits 1 on the same list.
step "every declared dependency is used (report)"; pnpm run -s deps:check && echo "deps:check: every declared dependency is used"

mkdir -p .test-results
rm -f .test-results/vitest.json
step "vitest"
vitest_status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=.test-results/vitest.json "$@" || vitest_status=$?

node scripts/summarize-tests.ts .test-results/vitest.json "$status" "$vitest_status"
