#!/usr/bin/env bash
# Installs what a fresh machine lacks: Node 22 (from the npm registry's node@22 package, when
# the machine's node is older), pnpm 10 (into a folder already on the caller's PATH, so the
# README's `… && pnpm start` finds it in the same shell), the workspace's packages, Debian's
# chromium (browser tests), python3-torch (the torch executor) and iptables (the NAT test), and builds the dashboard.
# BARNRAISE_NO_APT=1 skips the Debian packages (BARNRAISE_NO_CHROMIUM=1 or BARNRAISE_NO_TORCH=1 one of them). Prints one line per step; details of a failed
# step go to .data/setup.log.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p .data
log="$root/.data/setup.log"
: >"$log"

say () { echo "setup: $*"; }
# Runs a step quietly; on failure shows its log and stops.
quiet () {
  if ! "$@" >>"$log" 2>&1; then
    echo "setup: failed: $*" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}

# npm warnings about the machine's own npm config are not ours to fix; keep them out of sight.
npm_quiet () { quiet npm --loglevel=error --no-audit --no-fund --no-update-notifier "$@"; }
# --prefix moves npm's global config file along with the prefix; keep the machine's own
# (it may name the CA bundle or proxy this machine reaches the registry through).
npm_globalconfig=$(npm config get globalconfig 2>/dev/null || true)
npm_prefixed () { npm_quiet ${npm_globalconfig:+--globalconfig "$npm_globalconfig"} "$@"; }

if ! command -v npm >/dev/null 2>&1; then
  echo "setup: this machine has no npm; install Node.js and npm first (e.g. apt-get install nodejs npm)" >&2
  exit 1
fi

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 22 ] && [ ! -x .tools/node_modules/node/bin/node ]; then
  say "fetching Node 22 into .tools (this machine has $(node --version 2>/dev/null || echo no node))"
  mkdir -p .tools
  npm_prefixed install --no-save --prefix .tools node@22
fi

# pnpm must land in a folder that is on the PATH of the shell that called us: a PATH change
# made here would die with this script. The first writable one of these that is on PATH wins.
on_path () { case ":$PATH:" in *":$1:"*) return 0 ;; *) return 1 ;; esac; }
pnpm_ok () { command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null | cut -d. -f1)" = "10" ]; }
if ! pnpm_ok; then
  bin_dir=""
  # /usr/bin last: root's shell with a bare PATH (/usr/bin:/bin) has none of the others.
  for candidate in /usr/local/bin "$HOME/.local/bin" "$HOME/bin" /usr/bin; do
    if on_path "$candidate" && { [ -w "$candidate" ] || { [ ! -e "$candidate" ] && mkdir -p "$candidate" 2>/dev/null; }; }; then
      bin_dir="$candidate"; break
    fi
  done
  if [ -z "$bin_dir" ]; then
    echo "setup: cannot install pnpm: none of /usr/local/bin, ~/.local/bin, ~/bin, /usr/bin is both on your PATH and writable." >&2
    echo "setup: add one to PATH (e.g. export PATH=\"\$HOME/.local/bin:\$PATH\" in ~/.bashrc) or run as root, then run setup again." >&2
    exit 1
  fi
  say "installing pnpm 10 into $bin_dir"
  # The system npm with an explicit prefix: run under .tools' node, npm would put pnpm beside
  # that node, in a folder no user shell has on its PATH.
  npm_prefixed install -g --prefix "$(dirname "$bin_dir")" pnpm@10
  hash -r
fi

apt_packages=()
if [ "${BARNRAISE_NO_APT:-0}" != "1" ] && [ "${BARNRAISE_NO_CHROMIUM:-0}" != "1" ] && [ ! -x /usr/bin/chromium ]; then apt_packages+=(chromium); fi
# /usr/bin/python3: the interpreter the torch executor finds when a python3 earlier on PATH (pyenv) lacks torch.
if [ "${BARNRAISE_NO_APT:-0}" != "1" ] && [ "${BARNRAISE_NO_TORCH:-0}" != "1" ] && command -v apt-get >/dev/null 2>&1 && ! /usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1; then apt_packages+=(python3-torch python3-numpy); fi
# iptables: test/nat-relay.test.ts puts agents behind masquerading routers in network namespaces.
if [ "${BARNRAISE_NO_APT:-0}" != "1" ] && command -v apt-get >/dev/null 2>&1 && [ ! -x /usr/sbin/iptables ]; then apt_packages+=(iptables); fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  say "installing Debian packages: ${apt_packages[*]}"
  sudo_cmd=()
  if [ "$(id -u)" != "0" ]; then sudo_cmd=(sudo); fi
  quiet "${sudo_cmd[@]}" apt-get update -qq
  quiet "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}"
fi

# The tests use the local Postgres server; start it if the machine has one that is stopped.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
  say "starting the local PostgreSQL server"
  quiet pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
fi

say "installing the workspace's packages"
export PATH="$root/.tools/node_modules/node/bin:$PATH"
quiet pnpm install --frozen-lockfile=false --reporter=silent
say "building the dashboard"
quiet pnpm --filter @barnraise/web build
say "done (node $(bin/node --version), pnpm $(pnpm --version)); next: pnpm start, or pnpm test"
