# Sourced by deploy/start.sh and test/run.sh: makes the pinned pnpm available with only Node and
# npm present. Corepack cannot verify pnpm's registry signatures on every machine, so npm installs
# it: globally when allowed, otherwise under ~/.local.
PNPM_VERSION=10.34.8
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  echo "==> installing pnpm $PNPM_VERSION with npm"
  if ! npm install --global --no-fund --no-audit "pnpm@$PNPM_VERSION" >/dev/null 2>&1; then
    npm install --global --prefix "$HOME/.local" --no-fund --no-audit "pnpm@$PNPM_VERSION" >/dev/null
    export PATH="$HOME/.local/bin:$PATH"
  fi
  hash -r
fi
