#!/usr/bin/env bash
# The README's start command: installs pnpm (via npm) and the dependencies, builds, and starts a
# local cluster (2 storage nodes, insert :8480, select :8481, data under ./data). Ctrl-C stops it.
# Arguments are passed to deploy/local-cluster.mjs (e.g. -storageNodes=3 -replicationFactor=2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source deploy/ensure-pnpm.sh
pnpm install --frozen-lockfile
pnpm build
exec node deploy/local-cluster.mjs "$@"
