#!/usr/bin/env bash
# Installs the Debian packages the local stack needs, only those that are missing.
#   stack/system-packages.sh            everything below
#   stack/system-packages.sh NAME...    only these groups (e.g. `postgresql` from stack/postgres.sh)
# Idempotent: with everything present it prints one line and touches nothing. `apt-get update` runs
# once, and only when something is missing. apt's own output goes to $TP_RUN_DIR/apt.log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# group -> Debian packages. A group counts as present when all its packages are installed, or
# (for the toolchains) when its command is already on PATH from somewhere else.
declare -A GROUP_PACKAGES=(
  [base]="ca-certificates curl procps util-linux"
  [java]="openjdk-17-jdk-headless"
  [maven]="maven"
  [postgresql]="postgresql postgresql-contrib"
  [openssl]="openssl"
  [chromium]="chromium fonts-liberation"
  [lua]="lua5.4 jq"
  [python]="python3 python3-venv"
  [images]="debootstrap buildah skopeo umoci"
  # The real node (stack/node.sh): container runtime, CNI plugins, what kubelet/kube-proxy call,
  # a C compiler for the static pause binary, busybox-static for the node's test image.
  [node]="containerd runc containernetworking-plugins iptables conntrack socat ethtool gcc libc6-dev busybox-static"
)
declare -A GROUP_COMMAND=([java]=java [maven]=mvn [python]=python3)
ALL_GROUPS=(base java maven postgresql openssl chromium lua python images node)

groups=("$@")
[[ ${#groups[@]} -gt 0 ]] || groups=("${ALL_GROUPS[@]}")

installed() { [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]; }

missing=()
for g in "${groups[@]}"; do
  [[ -n "${GROUP_PACKAGES[$g]:-}" ]] || { say "system-packages: unknown group '$g' (known: ${ALL_GROUPS[*]})"; exit 2; }
  cmd="${GROUP_COMMAND[$g]:-}"
  if [[ -n "$cmd" ]] && command -v "$cmd" >/dev/null 2>&1; then continue; fi
  for p in ${GROUP_PACKAGES[$g]}; do installed "$p" || missing+=("$p"); done
done

if [[ ${#missing[@]} -eq 0 ]]; then
  say "system packages present (${groups[*]})"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  say "system-packages: missing ${missing[*]}; run this script as root (or: sudo apt-get install ${missing[*]})"
  exit 1
fi

mkdir -p "$TP_RUN_DIR"
log="$TP_RUN_DIR/apt.log"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
run_apt() {
  if ! apt-get "${apt_opts[@]}" "$@" >>"$log" 2>&1; then
    say "apt-get $* failed; last lines of $log:"
    tail -n 30 "$log" >&2
    exit 1
  fi
}
say "apt-get update (missing: ${missing[*]})"
run_apt update
say "apt-get install ${missing[*]} (log: $log)"
start=$SECONDS
run_apt install --no-install-recommends "${missing[@]}"
say "installed ${#missing[@]} package(s) in $((SECONDS - start))s"
