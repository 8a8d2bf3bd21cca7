#!/usr/bin/env bash
# Builds a real kube-apiserver (and kubelet) once per machine, from
# Debian's source package `kubernetes` (1.20.2, its Go dependencies
# vendored) with Debian's Go, offline: the Kubernetes tests run the plugin
# against it. Reused when already built: the binaries and a stamp of the
# source version are in $K8S_DIR (default /opt/userspace-cni-k8s).
#
# Facts this relies on (FIELD-NOTES): the source comes through a private
# deb-src list derived from the machine's apt sources (apt-source.sh); the vendored
# modern-go/reflect2 1.0.1 makes the server panic on every JSON map under
# Go 1.19, so Debian's 1.0.2 replaces it.
set -euo pipefail

dir=${K8S_DIR:-/opt/userspace-cni-k8s}
version=1.20.2
if [[ -x $dir/bin/kube-apiserver && -x $dir/bin/kubelet && $(cat "$dir/stamp" 2>/dev/null) == "$version" ]]; then
  exit 0
fi
started=$SECONDS
export DEBIAN_FRONTEND=noninteractive
packages=(golang-go etcd-server rsync golang-github-modern-go-reflect2-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The source package (versioned 1.20.5+really1.20.2 in Debian 12).
src=$dir/src
"$(dirname "$0")/../apt-source.sh" kubernetes "$src" "*really$version*"

tree=$src/tree
rm -rf "$tree/vendor/github.com/modern-go/reflect2"
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$tree/vendor/github.com/modern-go/reflect2"
rm -f "$tree/vendor/github.com/modern-go/reflect2/go.mod"

# Go's build cache inside the tree, so it goes with it.
(cd "$tree" && GOPATH=$tree/.go GOCACHE=$tree/.gocache CGO_ENABLED=0 GOPROXY=off GOFLAGS=-mod=vendor \
  make WHAT="cmd/kube-apiserver cmd/kubelet" >"$src/build.log" 2>&1) || {
  tail -40 "$src/build.log" >&2
  exit 1
}
mkdir -p "$dir/bin"
cp "$tree/_output/bin/kube-apiserver" "$tree/_output/bin/kubelet" "$dir/bin/"
echo "$version" >"$dir/stamp"
# The tree is 1 GB; the binaries are what the tests need.
rm -rf "$src"
echo "kube-apiserver and kubelet $version built in $((SECONDS - started)) s into $dir/bin"
