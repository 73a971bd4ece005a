#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing: the
# kernel-networking tests' iproute2, iptables, ping and iperf3, and promtool
# (Debian's prometheus package) for the monitoring rules
# (kustomize/monitoring_test.go). Runs as root (CI and the
# development machines do); without root it says what is missing and fails.
set -euo pipefail

declare -A pkg_of=([ip]=iproute2 [iptables]=iptables [ping]=iputils-ping [iperf3]=iperf3 [promtool]=prometheus)
missing=()
for cmd in "${!pkg_of[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_of[$cmd]}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "deps: missing packages ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
