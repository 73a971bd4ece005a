#!/usr/bin/env bash
# Provides the control-plane binaries that tests, benchmarks and the local
# sandbox run: bin/k8s/{kube-apiserver,etcd} (and kube-controller-manager with
# --sandbox). They are built from the Go module proxy by hack/tools, at the
# Kubernetes version the client libraries use, and cached outside the clone
# (keyed by version) so that a fresh clone on the same machine reuses them.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/hack/tools"
k8s_version=$(awk '$1 == "k8s.io/kubernetes" {print $2}' "$tools/go.mod")
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2}' "$tools/go.mod")
cache="${KOSMOS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kosmos}/k8s-$k8s_version-etcd-$etcd_version"
out="$root/bin/k8s"

bins=(kube-apiserver etcd)
[[ "${1:-}" == "--sandbox" ]] && bins+=(kube-controller-manager)

pkg_of() {
  case "$1" in
    etcd) echo ./etcd ;;
    *) echo "k8s.io/kubernetes/cmd/$1" ;;
  esac
}

mkdir -p "$cache" "$out"
minor=${k8s_version#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
for b in "${bins[@]}"; do
  if [[ ! -x "$cache/$b" ]]; then
    echo "testbin: building $b ($k8s_version) from the Go module proxy; the first build takes several minutes" >&2
    start=$(date +%s)
    (cd "$tools" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$cache/$b.tmp" "$(pkg_of "$b")")
    mv "$cache/$b.tmp" "$cache/$b"
    echo "testbin: built $b in $(( $(date +%s) - start ))s" >&2
  fi
  if ! cmp -s "$cache/$b" "$out/$b"; then
    cp "$cache/$b" "$out/$b.tmp" && mv "$out/$b.tmp" "$out/$b"
  fi
done
echo "testbin: ${bins[*]} ready in bin/k8s (cache: $cache)" >&2
