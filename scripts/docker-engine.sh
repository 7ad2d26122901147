#!/usr/bin/env bash
# A Docker engine for codequant's compose stack on a Debian machine without one: installs Debian's docker.io
# (engine and CLI), debootstrap (scripts/offline-base.sh) and iptables when missing, the Compose v2 and buildx
# CLI plugins when `docker compose` / `docker buildx` are missing, then starts dockerd in the background if
# no engine answers and waits until `docker info` works. Idempotent: it does nothing when an engine with
# Compose v2 and buildx already answers (Docker Desktop included).
#
# Compose v2 and buildx are packaged by Debian only from trixie on (bookworm has Compose v1, 1.29); both are
# static Go binaries, so the trixie .debs are fetched with apt-get against a private apt state (the host's
# sources, lists and dpkg database stay untouched) and only the two plugin binaries are unpacked into
# /usr/local/lib/docker/cli-plugins.
#
# DOCKERD_MTU (default 1400, this project's machines' interface) is the MTU of the default bridge, which
# builds use to reach the package registries. The engine's log: /var/log/codequant-dockerd.log.
set -euo pipefail

LOG=/var/log/codequant-dockerd.log
PLUGINS=/usr/local/lib/docker/cli-plugins
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

ready() { docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; }
if ready; then  # an engine with Compose v2 and buildx already answers (any OS): nothing to do
  echo "docker-engine: $(docker version --format 'engine {{.Server.Version}}'), $(docker compose version --short | sed 's/^/compose /')"
  exit 0
fi

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v iptables >/dev/null || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "docker-engine: please install ${need[*]} with your package manager" >&2; exit 1; }
  echo "docker-engine: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || true
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

debian_mirror() {
  # The first Debian archive the host's apt sources name (one-line or deb822 format).
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
    | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' | sed 's:/$::' || true
}

install_plugins() {
  local tmp mirror deb
  mirror="$(debian_mirror)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$tmp/lists/partial" "$tmp/archives/partial" "$tmp/x"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$tmp/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives"
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root)
  echo "docker-engine: fetching the Compose v2 and buildx plugins (Debian trixie packages) from $mirror"
  apt-get "${opts[@]}" update -qq
  (cd "$tmp" && apt-get "${opts[@]}" download -qq docker-compose docker-buildx)
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/x"; done
  $sudo mkdir -p "$PLUGINS"
  $sudo install -m 0755 "$tmp"/x/usr/libexec/docker/cli-plugins/docker-compose "$PLUGINS/docker-compose"
  $sudo install -m 0755 "$tmp"/x/usr/libexec/docker/cli-plugins/docker-buildx "$PLUGINS/docker-buildx"
}

if ! docker compose version >/dev/null 2>&1 || ! docker buildx version >/dev/null 2>&1; then
  install_plugins
fi

if ! docker info >/dev/null 2>&1; then
  echo "docker-engine: starting dockerd (log: $LOG)"
  $sudo sh -c "nohup dockerd --mtu ${DOCKERD_MTU:-1400} >>$LOG 2>&1 &"
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "docker-engine: the engine did not start; the end of its log:" >&2
    tail -n 20 "$LOG" >&2 || true
    exit 1
  fi
fi
echo "docker-engine: $(docker version --format 'engine {{.Server.Version}}'), $(docker compose version --short | sed 's/^/compose /')"
