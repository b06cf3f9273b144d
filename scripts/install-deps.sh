#!/usr/bin/env bash
# Installs what Talaria needs to build, run and test, and only what is missing.
# Debian 12 / Ubuntu 24.04. Uses sudo when not root. Safe to run again.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config curl file procps
  libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev librsvg2-dev libx11-dev
  xvfb xauth webkit2gtk-driver xclip
  dbus gnome-keyring
  nodejs npm
  # make package: dpkg-shlibdeps computes the .deb's Depends.
  dpkg-dev
  # The desktop end-to-end tests: a session bus for the single-instance hand-over
  # (dbus-run-session), focus and window moves (xdotool, xwininfo), the desktop entry check.
  dbus xdotool x11-utils desktop-file-utils
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

# Node may come from elsewhere (nvm, nodesource, the machine image): do not ask apt for it then.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  filtered=()
  for pkg in "${missing[@]}"; do
    [[ "$pkg" == nodejs || "$pkg" == npm ]] || filtered+=("$pkg")
  done
  missing=("${filtered[@]}")
fi

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Vite 7 needs Node 20.19 or newer; Debian 12 and Ubuntu 24.04 ship Node 18.
node_version=$(node -p 'process.versions.node' 2>/dev/null || echo 0)
IFS=. read -r major minor _ <<<"$node_version"
if (( major < 20 || (major == 20 && minor < 19) )); then
  echo "install-deps: Node.js $node_version is too old for the UI build; install Node 20.19+ or 22" >&2
  echo "  (for example with nvm: nvm install 22), then run this again." >&2
  exit 1
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: Rust is missing. Install it from https://rustup.rs (rustup), then run this again." >&2
  exit 1
fi
