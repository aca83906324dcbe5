#!/usr/bin/env bash
# Runs the benchmark flow by hand: Node-RED on 127.0.0.1:PORT (default 1880) calling the sandbox.
#
#   herald sandbox --listen 127.0.0.1:8099 &
#   SANDBOX_URL=http://127.0.0.1:8099 bench/peers/node-red/run.sh 1880
#   curl -s -X POST 127.0.0.1:1880/api/v1/records/Lead -H 'content-type: application/json' \
#        -d '{"FirstName":"Ada","LastName":"Lovelace","Phone":"+14155550100"}'
#
# The harness starts Node-RED the same way (with a temporary user directory and a free port).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${1:-1880}"
: "${SANDBOX_URL:=http://127.0.0.1:8099}"
export SANDBOX_URL
[ -f "$here/node_modules/node-red/red.js" ] || { echo "error: run $here/install.sh first" >&2; exit 1; }
mkdir -p "$here/.userdir"
exec node "$here/node_modules/node-red/red.js" --settings "$here/settings.js" --userDir "$here/.userdir" \
    --port "$port" "$here/flows.json"
