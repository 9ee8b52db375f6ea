#!/usr/bin/env bash
# Builds the strata:local image FROM scratch out of this machine's Node.js and the built repo.
# Usage: bash deploy/docker/build-image.sh [tag]   (run `pnpm build` first)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
tag=${1:-strata:local}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/opt/strata" "$root/tmp" "$root/data" "$root/etc"
chmod 1777 "$root/tmp"

node_bin=$(command -v node)
node_bin=$(readlink -f "$node_bin")
install -D "$node_bin" "$root/usr/bin/node"
# Every shared library node and the native addons (.node files) link, plus the loader, at the
# same paths.
copy_libs() {
  for lib in $(ldd "$1" 2>/dev/null | awk '/=>/ {print $3} /ld-linux/ {print $1}' | grep '^/'); do
    [ -e "$root$lib" ] || install -D "$(readlink -f "$lib")" "$root$lib"
  done
}
copy_libs "$node_bin"
while IFS= read -r addon; do copy_libs "$addon"; done < <(find -L node_modules/.pnpm -name '*.node' -type f 2>/dev/null)
for f in /etc/ssl/certs/ca-certificates.crt /etc/nsswitch.conf; do
  [ -f "$f" ] && install -D "$f" "$root$f"
done
echo "root:x:0:0:root:/root:/sbin/nologin" > "$root/etc/passwd"
echo "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin" >> "$root/etc/passwd"
echo "hosts: files dns" > "$root/etc/nsswitch.conf"

# The built repository: package manifests, dist/ of every package and service, node_modules
# (pnpm's relative symlinks stay valid under /opt/strata).
for d in packages services; do
  for p in "$d"/*/; do
    mkdir -p "$root/opt/strata/$p"
    cp -a "$p/package.json" "$root/opt/strata/$p"
    [ -d "$p/dist" ] && cp -a "$p/dist" "$root/opt/strata/$p"
    [ -d "$p/node_modules" ] && cp -a "$p/node_modules" "$root/opt/strata/$p"
  done
done
cp -a package.json node_modules "$root/opt/strata/"
# Development-only packages are not needed at run time.
rm -rf "$root"/opt/strata/node_modules/.pnpm/{typescript,eslint,vite,vitest,playwright-core,esbuild,happy-dom,rollup,tsx}@* "$root"/opt/strata/node_modules/.pnpm/{@typescript-eslint,@esbuild,@rollup,@vitest}+* 2>/dev/null || true
cp deploy/docker/Dockerfile "$ctx/"
docker build -q -t "$tag" "$ctx" >/dev/null
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
