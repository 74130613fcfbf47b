#!/usr/bin/env bash
# Builds the two images, g0efilter and g0efilter-dashboard, with nothing
# pulled: static binaries are built here by `go build`, put in a build
# context beside the few files of a root file system, and each Dockerfile
# copies them onto an empty image (FROM scratch).
#
#   scripts/build-images.sh              # tags g0efilter:local, g0efilter-dashboard:local
#   TAG=v1.2.3 VERSION=v1.2.3 scripts/build-images.sh
#
# VERSION is stamped into the binaries (main.version) and the images'
# org.opencontainers.image.version label; default: git describe.
# CA_BUNDLE is the certificate bundle copied to
# /etc/ssl/certs/ca-certificates.crt (Go's first choice on Linux), for
# Gotify and a dashboard over HTTPS; default: this machine's.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
TAG=${TAG:-local}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
if [ ! -s "$CA_BUNDLE" ]; then
  echo "build-images: no CA bundle at $CA_BUNDLE (install ca-certificates or set CA_BUNDLE)" >&2
  exit 1
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

# Static (no cgo: netlink and SQLite are pure Go), without paths of this
# machine (-trimpath) or debug tables (-s -w), with the version stamped in.
for cmd in g0efilter dashboard; do
  CGO_ENABLED=0 GOOS=linux go build -trimpath \
    -ldflags "-s -w -X main.version=$VERSION" -o "$ctx/$cmd" "./cmd/$cmd"
done

# The root file system both images share: users for names in `ps` and
# USER lines, the CA bundle, an empty /tmp and an empty /data.
mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/tmp" "$ctx/data"
chmod 1777 "$ctx/rootfs/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ctx/rootfs/etc/group"
cp "$CA_BUNDLE" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"

docker build -q -f cmd/g0efilter/Dockerfile --build-arg "VERSION=$VERSION" -t "g0efilter:$TAG" "$ctx"
docker build -q -f cmd/dashboard/Dockerfile --build-arg "VERSION=$VERSION" -t "g0efilter-dashboard:$TAG" "$ctx"
