#!/bin/sh
# cli_openai.sh — the official `openai` npm client against `herd serve` on the
# tiny llama: completions, chat, streaming, errors (tests/openai/check.cjs).
# `make test-deps` installs node and the client (npm, into build-deps/openai);
# without them the test is skipped (exit 77), never installed from here.
set -u
HERD=$1
M=../shared/models/tiny/llama-f32.gguf
. tests/lib.sh
need_shared "$M"
need_tool node
dir=$(pwd)/build-deps/openai
[ -f "$dir/node_modules/openai/package.json" ] || skip "the openai npm package is not in $dir (make test-deps installs it)"
tmp=$TMP
"$HERD" serve -m "$M" --port 0 --parallel 2 -c 1024 --api-key sekret 2>"$tmp/log" &
pid=$!
trap 'kill $pid 2>/dev/null; cleanup_tmp' EXIT
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
