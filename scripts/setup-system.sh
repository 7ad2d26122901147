#!/usr/bin/env bash
# Debian packages codequant needs outside Python: bubblewrap and libseccomp2 (sandbox), a JDK and javatuples
# (MultiPL-E Java), g++ (MultiPL-E C++), Node.js (MultiPL-E JavaScript), Chromium + ChromeDriver (dashboard
# tests). Idempotent; does nothing when present.
set -euo pipefail

need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || need+=(libseccomp2)
command -v javac >/dev/null || need+=(default-jdk-headless)
[ -f /usr/share/java/javatuples.jar ] || need+=(libjavatuples-java)
command -v g++ >/dev/null || need+=(g++)
command -v node >/dev/null || need+=(nodejs)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "setup-system: please install ${need[*]} with your package manager" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup-system: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || true
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
