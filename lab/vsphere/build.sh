#!/usr/bin/env bash
# Builds the lab's vCenter (this directory's Go main) and govc, both from Debian's
# golang-github-vmware-govmomi-dev source, into CACHE/vsphere-<hash of the sources>/bin.
# Skips when that build is complete. Offline: GOPROXY=off; go.mod points at /usr/share/gocode.
# govc is not in Debian's -dev package (debian/rules excludes it), so its directory comes from
# the same Debian source package (apt-get source) and builds against the installed library.
# Usage: build.sh CACHE_DIR
set -euo pipefail
cache=${1:?usage: build.sh CACHE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"

hash=$(cd "$here" && python3 -c 'import sys; sys.path.insert(0, "."); import buildhash; print(buildhash.source_hash("."))')
dest="$cache/vsphere-$hash"
if [ -e "$dest/.complete" ]; then
  echo "vsphere: cached in $dest"; exit 0
fi

start=$(date +%s.%N)
work=$(mktemp -d "$cache/build-vsphere.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/home"
export GOPROXY=off GOFLAGS=-mod=mod GOCACHE="${GOCACHE:-$cache/go-build}" HOME="$work/home" CGO_ENABLED=0 GOTOOLCHAIN=local
# The module's go.sum stays out of the clone: build a copy of the sources.
mkdir "$work/src" && cp "$here"/go.mod "$here"/*.go "$work/src/"
(cd "$work/src" && go build -trimpath -o "$work/bin/vancouver-vcsim" .)
main_s=$(python3 -c "import time; print(round(time.time() - $start, 1))")

# govc: Debian's source package, its govc/ tree only, in GOPATH mode over the installed library.
# govc imports govmomi/internal, which GOPATH mode allows only inside one root: that root
# links every installed govmomi package next to the unpacked govc/.
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
python3 "$here/../kubernetes/debsrc.py" > "$work/apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
          -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
version=$(dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev)
(cd "$work" && apt-get "${apt_opts[@]}" -qq update && \
  apt-get "${apt_opts[@]}" -qq source --download-only "golang-github-vmware-govmomi=$version")
mkdir -p "$work/gopath/src/github.com/vmware/govmomi"
for e in /usr/share/gocode/src/github.com/vmware/govmomi/*; do
  ln -s "$e" "$work/gopath/src/github.com/vmware/govmomi/"
done
tar -xJf "$work"/golang-github-vmware-govmomi_*.orig.tar.xz -C "$work" --wildcards '*/govc/*'
mv "$work"/govmomi-*/govc "$work/gopath/src/github.com/vmware/govmomi/govc"
(cd "$work/gopath/src/github.com/vmware/govmomi/govc" && \
  GO111MODULE=off GOFLAGS= GOPATH="$work/gopath:/usr/share/gocode" go build -trimpath -o "$work/bin/govc" .)

rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
mv "$work/bin" "$dest.tmp/bin"
total_s=$(python3 -c "import time; print(round(time.time() - $start, 1))")
printf 'vancouver-vcsim built in %s s; with govc %s s (govmomi %s)\n' "$main_s" "$total_s" "$version" > "$dest.tmp/.complete"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "vsphere: $(cat "$dest/.complete") into $dest"
