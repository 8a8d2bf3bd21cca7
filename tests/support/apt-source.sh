#!/usr/bin/env bash
# Fetches and unpacks Debian's source package PACKAGE into DEST/tree,
# offline from the machine's own mirror: a deb-src list of our own is
# derived from its apt sources (its own lists stay untouched). Prints
# nothing; the tree is DEST/tree.
#
#   apt-source.sh PACKAGE DEST [VERSION-GLOB]
set -euo pipefail
package=$1 dest=$2 glob=${3:-*}

command -v dpkg-source >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
}
rm -rf "$dest"
mkdir -p "$dest/apt/parts" "$dest/apt/lists/partial" "$dest/apt/cache"
for f in /etc/apt/sources.list.d/*.sources; do
  [[ -f $f ]] && sed 's/^Types: deb$/Types: deb-src/' "$f" >"$dest/apt/parts/$(basename "$f")"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [[ -f $f ]] && sed -n 's/^deb /deb-src /p' "$f" >"$dest/apt/parts/$(basename "$f").list"
done
apt_opts=(-o "APT::Sandbox::User=root"
          -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$dest/apt/parts"
          -o "Dir::State::Lists=$dest/apt/lists" -o "Dir::Cache=$dest/apt/cache")
apt-get "${apt_opts[@]}" update -qq
(cd "$dest" && apt-get "${apt_opts[@]}" source --download-only -qq "$package")
# shellcheck disable=SC2086 # the glob is meant to expand
dsc=$(ls "$dest"/${package}_${glob}.dsc | head -1)
(cd "$dest" && dpkg-source --no-check -x "$dsc" tree >/dev/null)
