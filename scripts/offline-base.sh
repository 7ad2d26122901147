#!/usr/bin/env bash
# A Debian bookworm base image made on this machine, for hosts that reach no container registry:
# `debootstrap --variant=minbase bookworm` from the Debian mirror the host's apt sources name, with the host's
# Debian apt sources (and the keyrings they name), its apt configuration and its trust store copied in, then
# `docker import`ed as codequant/debian:bookworm. Inside `docker build`, apt and pip then reach the package
# registries the way the host does (SSL_CERT_FILE / PIP_CERT point at the host's CA bundle).
#
# The CAs differ from machine to machine: they are taken from the host at build time and never committed.
# The image is labelled with a fingerprint of everything copied from the host; when the host's sources,
# apt configuration or CAs change, the next run builds it again, otherwise it does nothing.
#
# Usage: scripts/offline-base.sh [IMAGE]   (default codequant/debian:bookworm; needs root for debootstrap)
set -euo pipefail

IMAGE="${1:-codequant/debian:bookworm}"
SUITE=bookworm
BUNDLE=/etc/ssl/certs/ca-certificates.crt
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# The host's active apt sources (*.list one-line, *.sources deb822); disabled files are skipped.
sources=()
[ -f /etc/apt/sources.list ] && sources+=(/etc/apt/sources.list)
for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || { echo "offline-base: no apt sources on this host" >&2; exit 1; }
# The keyrings those sources name (Signed-By / signed-by=), which the image needs to verify them.
mapfile -t keyrings < <(grep -hoiE 'signed-by[:=] *[^] ]+' "${sources[@]}" | sed -E 's/^[^:=]*[:=] *//' | sort -u)
mirror="$(grep -hoE 'https?://[^ ]+/debian/?( |$)' "${sources[@]}" | head -n1 | tr -d ' ' | sed 's:/$::' || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
cas=()
for f in /usr/local/share/ca-certificates/*; do [ -f "$f" ] && cas+=("$f"); done
[ -f "$BUNDLE" ] || { echo "offline-base: $BUNDLE not found (install ca-certificates)" >&2; exit 1; }

fingerprint="$(cat "${sources[@]}" "${keyrings[@]}" /etc/apt/apt.conf.d/* "$BUNDLE" "${cas[@]}" 2>/dev/null \
  | sha256sum | cut -c1-16)"
current="$(docker image inspect --format '{{index .Config.Labels "codequant.host-fingerprint"}}' "$IMAGE" 2>/dev/null || true)"
if [ "$current" = "$fingerprint" ]; then
  echo "offline-base: $IMAGE is up to date with this host's apt sources and CAs"
  exit 0
fi

command -v debootstrap >/dev/null || { echo "offline-base: debootstrap is missing (Debian package debootstrap; scripts/docker-engine.sh installs it with the engine)" >&2; exit 1; }
root="$(mktemp -d /var/tmp/codequant-rootfs.XXXXXX)"
trap '$sudo rm -rf "$root"' EXIT
echo "offline-base: debootstrap --variant=minbase $SUITE from $mirror"
$sudo debootstrap --variant=minbase "$SUITE" "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

$sudo rm -f "$root/etc/apt/sources.list"
for f in "${sources[@]}"; do $sudo install -D -m 0644 "$f" "$root$f"; done
for f in "${keyrings[@]}"; do [ -f "$f" ] && $sudo install -D -m 0644 "$f" "$root$f"; done
for f in /etc/apt/apt.conf.d/*; do [ -f "$f" ] && $sudo install -m 0644 "$f" "$root/etc/apt/apt.conf.d/"; done
$sudo install -D -m 0644 "$BUNDLE" "$root$BUNDLE"
for f in "${cas[@]}"; do $sudo install -D -m 0644 "$f" "$root$f"; done
$sudo rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

echo "offline-base: importing $IMAGE"
$sudo tar -C "$root" -c . | docker import \
  --change "ENV SSL_CERT_FILE=$BUNDLE PIP_CERT=$BUNDLE REQUESTS_CA_BUNDLE=$BUNDLE LANG=C.UTF-8" \
  --change "LABEL codequant.host-fingerprint=$fingerprint" \
  --change 'CMD ["bash"]' \
  - "$IMAGE" >/dev/null
echo "offline-base: $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
