#!/usr/bin/env bash
# The README's test command: installs what the tests need (pnpm, dependencies), builds every
# package and service, then runs the whole test suite with vitest. Works on a fresh machine with
# only Node >= 20 and npm. Tests that need a real peer (Prometheus, VictoriaMetrics, Chromium,
# Docker) skip with a message when it is missing locally; with CI=true they fail instead, and
# .ci/run installs those peers first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source deploy/ensure-pnpm.sh

echo "==> pnpm install"
pnpm install --frozen-lockfile
echo "==> pnpm build"
pnpm build
echo "==> pnpm check"
pnpm check
echo "==> pnpm test"
pnpm test "$@"
