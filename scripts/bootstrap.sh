#!/usr/bin/env bash
# Makes this checkout runnable on a machine that has only Node (any version) and npm:
#   - Node 24 LTS from the npm registry's `node` package into .tools/ when the machine's Node is older,
#   - pnpm at the pinned version into .tools/ (corepack cannot verify signatures here),
#   - the Debian packages the tests need (redis-server, kcat, prometheus, openssl for test certificates, GNU patch,
#     chromium for the send history page's browser test)
#     when running as root, with their daemons kept from starting (this script stops no process: it starts none),
#   - node_modules from the lockfile.
# Source it (`. scripts/bootstrap.sh`) so that PATH keeps .tools/bin first for the caller.
set -euo pipefail

LOOKSTREAM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_VERSION="24.21.0"
PNPM_VERSION="10.34.8"
TOOLS="$LOOKSTREAM_ROOT/.tools"
export PATH="$TOOLS/bin:$PATH"

say() { printf '[bootstrap] %s\n' "$*" >&2; }

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(node_major)" -lt 24 ]; then
  say "Node $(node --version 2>/dev/null || echo none) is older than 24: installing node@$NODE_VERSION into .tools/"
  npm install --global --prefix "$TOOLS" --no-fund --no-audit --loglevel=error "node@$NODE_VERSION" >&2
  hash -r
  if [ "$(node_major)" -lt 24 ]; then
    say "failed to put Node 24 on PATH (found $(node --version))"; exit 1
  fi
fi

if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  say "installing pnpm@$PNPM_VERSION into .tools/"
  npm install --global --prefix "$TOOLS" --no-fund --no-audit --loglevel=error "pnpm@$PNPM_VERSION" >&2
  hash -r
fi

# Debian packages used by tests and `npm start`. Only what is missing is installed.
if [ "${LOOKSTREAM_SKIP_APT:-}" != "1" ]; then
  missing=()
  # redis-server also runs the tests' sentinels (redis-server --sentinel); redis-cli (redis-tools) comes with it.
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || missing+=(redis-server)
  command -v kcat >/dev/null 2>&1 || missing+=(kcat)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  # GNU patch rebuilds the published kafkajs for the patch's differential test.
  command -v patch >/dev/null 2>&1 || missing+=(patch)
  # The send history page's browser test drives Debian's chromium (playwright-core, no browser download).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      say "installing Debian packages: ${missing[*]}"
      # The packaged daemons (prometheus, redis-server) must not start: the tests start their own. Debian's
      # policy-rc.d hook answers "101: action forbidden" to every service start during the install. An
      # existing policy-rc.d is the machine's own and is left as it is.
      policy=/usr/sbin/policy-rc.d
      own_policy=0
      if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
      fi
      install_status=0
      { DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; } || install_status=$?
      if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
      [ "$install_status" = 0 ] || exit "$install_status"
    else
      say "missing Debian packages: ${missing[*]}"
      say "install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
      exit 1
    fi
  fi
fi

if [ ! -f "$LOOKSTREAM_ROOT/node_modules/.modules.yaml" ] || [ "$LOOKSTREAM_ROOT/pnpm-lock.yaml" -nt "$LOOKSTREAM_ROOT/node_modules/.modules.yaml" ]; then
  say "installing node_modules (pnpm install --frozen-lockfile)"
  (cd "$LOOKSTREAM_ROOT" && pnpm install --frozen-lockfile --reporter=append-only >&2)
fi
