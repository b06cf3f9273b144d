#!/usr/bin/env bash
# Installs the pinned tauri-driver (the WebDriver bridge for end-to-end tests) if it is missing.
set -euo pipefail
VERSION="${TAURI_DRIVER_VERSION:-2.1.0}"
# tauri-driver has no --version flag; cargo's install list knows what is installed.
if command -v tauri-driver >/dev/null 2>&1 && cargo install --list 2>/dev/null | grep -q "^tauri-driver v$VERSION:"; then
  exit 0
fi
echo "install-tauri-driver: installing tauri-driver $VERSION"
cargo install tauri-driver --locked --version "$VERSION"
