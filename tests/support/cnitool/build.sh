#!/usr/bin/env bash
# Builds cnitool, libcni's own command-line runtime, once per machine from
# Debian's source package golang-github-appc-cni (libcni 1.1.2: ADD,
# CHECK, DEL; no GC or STATUS) with Debian's Go, offline. The tests drive
# the plugin through it: an implementation of the runtime side that is
# not ours. Reused when built: $TOOLS_DIR/bin/cnitool (default
# /opt/userspace-cni-tools) and a stamp of the source version.
set -euo pipefail

dir=${TOOLS_DIR:-/opt/userspace-cni-tools}
package=golang-github-appc-cni
if [[ -x $dir/bin/cnitool && $(cat "$dir/cnitool.stamp" 2>/dev/null) == "$package" ]]; then
  exit 0
fi
dpkg-query -W -f='${Status}' golang-go 2>/dev/null | grep -q "install ok installed" || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go >/dev/null
}
src=$dir/cnitool-src
"$(dirname "$0")/../apt-source.sh" "$package" "$src"
# libcni's own tree is the one import path cnitool needs (GOPATH mode).
mkdir -p "$src/gopath/src/github.com/containernetworking"
ln -sfn "$src/tree" "$src/gopath/src/github.com/containernetworking/cni"
(cd "$src/gopath/src/github.com/containernetworking/cni" &&
  GOPATH=$src/gopath GOCACHE=$src/gocache GO111MODULE=off GOPROXY=off CGO_ENABLED=0 \
    go build -o "$dir/bin/cnitool" ./cnitool)
echo "$package" >"$dir/cnitool.stamp"
rm -rf "$src"
