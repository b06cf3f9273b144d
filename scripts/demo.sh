#!/usr/bin/env bash
# `make demo`: the stand-in LLM server plays a short scripted conversation (streamed text,
# a tool call, a todo list) and the app opens against it. No API key, no network.
set -euo pipefail
APP_BIN="$1"
STANDIN_BIN="$2"
DEMO_DIR="${TALARIA_DEMO_DIR:-$PWD/target/demo}"
mkdir -p "$DEMO_DIR/data" "$DEMO_DIR/work"

coproc STANDIN { exec "$STANDIN_BIN" --demo; }
trap 'kill "$STANDIN_PID" 2>/dev/null || true' EXIT
read -r word url <&"${STANDIN[0]}"
if [[ "$word" != "LISTENING" ]]; then
  echo "demo: the stand-in server did not start (said: $word $url)" >&2
  exit 1
fi
echo "demo: stand-in LLM server at $url; data in $DEMO_DIR"

export TALARIA_PROVIDER=openai
export TALARIA_BASE_URL="$url/v1"
export TALARIA_MODEL=standin-demo
export TALARIA_API_KEY=demo-key
export TALARIA_DATA_DIR="$DEMO_DIR/data"
export TALARIA_WORKDIR="$DEMO_DIR/work"
if [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
  exec xvfb-run -a -s "-screen 0 1280x800x24" "$APP_BIN"
fi
"$APP_BIN"
