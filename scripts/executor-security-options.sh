#!/usr/bin/env bash
# Which `security_opt` sets let bubblewrap isolate programs in the executor image (codequant/executor, `make images`),
# started as compose.yaml starts it otherwise (non-root, read-only, every capability dropped, tmpfs /tmp). For each
# set it prints whether the sandbox isolates programs, and bubblewrap's error when it does not
# (docs/deployment.md, "The executor's security options", records the answers).
#   bash scripts/executor-security-options.sh [IMAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
image="${1:-codequant/executor}"
profile="seccomp=$PWD/docker/executor-seccomp.json"
probe='from codequant_executor.sandbox import Sandbox
s = Sandbox()
print("isolated" if s.isolated else f"NOT isolated: {s.bwrap_problem}")'
check() {
  local label="$1"; shift
  local out
  out="$(docker run --rm --network none --read-only --tmpfs /tmp:exec --cap-drop ALL --user 10001:10001 \
    "$@" --entrypoint python "$image" -c "$probe" 2>/dev/null | tail -n1 || true)"
  printf '%-72s %s\n' "$label" "${out:-the container did not start}"
}
check "compose.yaml: profile + apparmor=unconfined + systempaths=unconfined" \
  --security-opt no-new-privileges:true --security-opt "$profile" \
  --security-opt apparmor=unconfined --security-opt systempaths=unconfined &
check "profile + systempaths=unconfined (no apparmor option)" \
  --security-opt no-new-privileges:true --security-opt "$profile" --security-opt systempaths=unconfined &
check "seccomp=unconfined + systempaths=unconfined" \
  --security-opt no-new-privileges:true --security-opt seccomp=unconfined --security-opt systempaths=unconfined &
check "profile + apparmor=unconfined (Docker's masked /proc)" \
  --security-opt no-new-privileges:true --security-opt "$profile" --security-opt apparmor=unconfined &
check "Docker's default seccomp + apparmor + systempaths=unconfined" \
  --security-opt no-new-privileges:true --security-opt apparmor=unconfined --security-opt systempaths=unconfined &
check "Docker's default seccomp + --cap-add SYS_ADMIN + systempaths=unconfined" \
  --cap-add SYS_ADMIN --security-opt apparmor=unconfined --security-opt systempaths=unconfined &
check "no options" &
wait
