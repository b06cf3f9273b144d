#!/usr/bin/env bash
# Prints, as a JSON array for `tauri bundle --config`, the Debian dependencies of BINARY: the
# packages its shared libraries come from, with the minimum versions their symbols need. This is
# what dpkg-shlibdeps computes for ${shlibs:Depends} in every Debian package.
set -euo pipefail
binary=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps reads the package list from debian/control.
mkdir -p "$work/debian"
printf 'Source: talaria\n\nPackage: talaria\nArchitecture: any\n' >"$work/debian/control"
if ! (cd "$work" && dpkg-shlibdeps -O -e"$binary" >"$work/out" 2>"$work/err"); then
  cat "$work/err" >&2
  echo "deb-depends: dpkg-shlibdeps failed on $binary (is dpkg-dev installed?)" >&2
  exit 1
fi
depends=$(sed -n 's/^shlibs:Depends=//p' "$work/out")
if [[ -z "$depends" ]]; then
  echo "deb-depends: dpkg-shlibdeps found no dependencies for $binary" >&2
  exit 1
fi
# "a (>= 1), b | c" -> ["a (>= 1)","b | c"]
printf '%s\n' "$depends" | sed 's/, /\n/g' | sed 's/.*/"&"/' | paste -sd, - | sed 's/^/[/; s/$/]/'
