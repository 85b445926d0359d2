#!/bin/sh
# cli_openai.sh — the official `openai` npm client against `herd serve` on the
# tiny llama: completions, chat, streaming, errors (tests/openai/check.cjs).
# The client is installed with npm into the build directory once; without
# node, npm or a reachable registry the test is skipped, not failed.
set -u
HERD=$1
M=../shared/models/tiny/llama-f32.gguf
[ -f "$M" ] || { echo "skip: $M missing"; exit 0; }
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { echo "skip: node/npm not installed"; exit 0; }
dir=$(cd "$(dirname "$HERD")" && pwd)/openai-npm
if [ ! -f "$dir/node_modules/openai/package.json" ]; then
  mkdir -p "$dir"
  if ! (cd "$dir" && timeout 180 npm install --no-audit --no-fund --loglevel=error openai >npm.log 2>&1); then
    echo "skip: npm install openai failed (offline?)"; tail -3 "$dir/npm.log"; exit 0
  fi
fi
tmp=$(mktemp -d)
"$HERD" serve -m "$M" --port 0 --parallel 2 -c 1024 --api-key sekret 2>"$tmp/log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
port=""
for i in $(seq 1 100); do
  port=$(sed -n 's/.*listening on 127.0.0.1 port \([0-9]*\).*/\1/p' "$tmp/log")
  [ -n "$port" ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: herd serve did not start"; cat "$tmp/log"; exit 1; }
OPENAI_MODULE="$dir/node_modules/openai" HERD_PORT=$port node tests/openai/check.cjs
rc=$?
kill -TERM $pid
wait $pid
src=$?
[ $src -eq 0 ] || { echo "FAIL: herd serve exited with $src after SIGTERM"; cat "$tmp/log"; rc=1; }
exit $rc
