#!/usr/bin/env bash
# Installs what a fresh machine lacks: Node 22 (from the npm registry's node@22 package, when
# the machine's node is older), pnpm 10, the workspace's packages, Debian's chromium (for the
# browser tests; skipped when BARNRAISE_NO_CHROMIUM=1), Debian's python3-torch (for the torch
# executor; skipped when BARNRAISE_NO_TORCH=1), and builds the dashboard.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 22 ] && [ ! -x .tools/node_modules/node/bin/node ]; then
  echo "setup: fetching Node 22 into .tools (machine has $(node --version 2>/dev/null || echo none))"
  mkdir -p .tools
  npm install --no-save --no-audit --no-fund --prefix .tools node@22 >/dev/null
fi
if [ -x .tools/node_modules/node/bin/node ]; then
  export PATH="$root/.tools/node_modules/node/bin:$PATH"
fi

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version | cut -d. -f1)" != "10" ]; then
  echo "setup: installing pnpm 10"
  npm install -g pnpm@10 >/dev/null
fi

if [ "${BARNRAISE_NO_CHROMIUM:-0}" != "1" ] && [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi

# The torch executor's tests (and a CPU torch executor for `pnpm start`) need Debian's torch;
# GPU machines install a CUDA build of torch themselves (torch-executor/README.md).
if [ "${BARNRAISE_NO_TORCH:-0}" != "1" ] && ! /usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1; then
  echo "setup: installing Debian's python3-torch and python3-numpy for the torch executor"
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-numpy >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-numpy >/dev/null
  fi
fi

# The tests use the local Postgres server; start it if the machine has one that is stopped.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "setup: starting the local PostgreSQL server"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
fi

pnpm install --frozen-lockfile=false --reporter=silent
pnpm --filter @barnraise/web build >/dev/null
echo "setup: done (node $(bin/node --version), pnpm $(pnpm --version))"
