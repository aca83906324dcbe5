#!/usr/bin/env bash
# Installs Node-RED 4 from npm into bench/peers/node-red/node_modules (gitignored), for the side-by-side
# peer run of the speed-to-lead benchmark. Node-RED 5 needs a newer Node.js than v20, hence `@4`.
#
#   bench/peers/node-red/install.sh            # once
#   herald bench --peer node-red               # then (or the herald-bench example)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
command -v node >/dev/null || { echo "error: Node.js is not installed (Node-RED 4 needs Node.js 18 or 20+)" >&2; exit 1; }
command -v npm >/dev/null || { echo "error: npm is not installed" >&2; exit 1; }
if [ -f node_modules/node-red/package.json ]; then
    echo "Node-RED $(node -p "require('./node_modules/node-red/package.json').version") is already installed in $here/node_modules"
    exit 0
fi
# --no-save keeps package.json free of a pinned version; --omit=optional skips native extras
# (serial ports, bcrypt builds) that the benchmark flow does not use.
npm install --no-save --no-audit --no-fund --omit=optional --loglevel=error node-red@4
echo "Installed Node-RED $(node -p "require('./node_modules/node-red/package.json').version") in $here/node_modules"
