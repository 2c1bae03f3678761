#!/usr/bin/env bash
# Installs, idempotently, the OIDC provider peer of the end-to-end tests:
# npm's oidc-provider (pinned in e2e/oidc/package-lock.json) under
# e2e/oidc/node_modules. Nothing is done when node_modules is already newer
# than the lock file.
set -euo pipefail

cd "$(dirname "$0")/../e2e/oidc"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing: nodejs npm"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "install-oidc: node $(node --version) is too old; the OIDC peer needs Node.js >= 20" >&2
  exit 1
fi

# npm keeps a copy of the lock it installed at node_modules/.package-lock.json.
marker=node_modules/.package-lock.json
if [ ! -f node_modules/oidc-provider/package.json ] || [ ! -f "$marker" ] \
  || [ package-lock.json -nt "$marker" ] || [ package.json -nt "$marker" ]; then
  echo "installing the OIDC peer (npm ci in e2e/oidc)"
  npm ci --omit=dev --no-audit --no-fund --loglevel=error
  touch "$marker"
fi

echo "oidc ok: node $(node --version), oidc-provider $(node -p 'require("./node_modules/oidc-provider/package.json").version')"
