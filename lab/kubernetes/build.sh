#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kube-scheduler from Debian's own
# `kubernetes` source package into CACHE/kubernetes-<Debian version>/bin, plus Debian's kubectl
# (kubernetes-client, unpacked there so a kubectl of another package is never clobbered).
# Recipe and timings: shared/reference/kubernetes.md §1.2 (Go 1.19, rsync, the reflect2 swap).
# Usage: build.sh CACHE_DIR        (skips when the cached build for this version is complete)
set -euo pipefail
cache=${1:?usage: build.sh CACHE_DIR}
mkdir -p "$cache"
here=$(cd "$(dirname "$0")" && pwd)

# The Debian version the machine's apt would install (empty before any `apt-get update`).
version=$(apt-cache show --no-all-versions kubernetes-client 2>/dev/null | sed -n 's/^Version: //p' | head -1)
if [ -n "$version" ] && [ -e "$cache/kubernetes-$version/.complete" ]; then
  echo "kubernetes $version: cached in $cache/kubernetes-$version"; exit 0
fi
if [ -z "$version" ] && compgen -G "$cache/kubernetes-*/.complete" >/dev/null; then
  echo "kubernetes: cached in" $(dirname $(compgen -G "$cache/kubernetes-*/.complete" | tail -1)); exit 0
fi

start=$(date +%s)
work=$(mktemp -d "$cache/build-kubernetes.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
# A private apt state: deb-src entries derived from the machine's own Debian sources, so no
# mirror is hard-coded and the machine's apt configuration is left untouched.
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
python3 "$here/debsrc.py" > "$work/apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
          -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" -qq update
cd "$work"
apt-get "${apt_opts[@]}" -qq source --download-only kubernetes
apt-get "${apt_opts[@]}" -qq download kubernetes-client golang-github-modern-go-reflect2-dev
dsc=$(ls kubernetes_*.dsc)
version=$(sed -n 's/^Version: //p' "$dsc" | head -1)
[ -n "$version" ] || { echo "build.sh: no Version in $dsc" >&2; exit 1; }
dest="$cache/kubernetes-$version"

mkdir src && tar -xzf kubernetes_*.orig.tar.gz -C src --strip-components=1
dpkg -x golang-github-modern-go-reflect2-dev_*.deb reflect2
dpkg -x kubernetes-client_*.deb client
# reflect2 1.0.1 (vendored) panics on Go >= 1.18 when decoding maps; Debian's 1.0.2 does not.
vend=src/vendor/github.com/modern-go/reflect2
find "$vend" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
cp reflect2/usr/share/gocode/src/github.com/modern-go/reflect2/*.{go,s} "$vend"/ 2>/dev/null \
  || cp reflect2/usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$vend"/
mkdir -p src/.go/src/k8s.io && ln -s ../../.. src/.go/src/k8s.io/kubernetes
mkdir -p home
(cd src/.go/src/k8s.io/kubernetes && GOPATH="$work/src/.go" GOFLAGS= CGO_ENABLED=0 HOME="$work/home" \
  GOCACHE="$work/gocache" make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler")

rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/bin"
cp src/_output/bin/kube-apiserver src/_output/bin/kube-controller-manager src/_output/bin/kube-scheduler "$dest.tmp/bin/"
cp client/usr/bin/kubectl "$dest.tmp/bin/kubectl"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "built in $(( $(date +%s) - start )) s" > "$dest/.complete"
echo "kubernetes $version: built in $(( $(date +%s) - start )) s into $dest"
