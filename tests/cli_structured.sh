#!/bin/sh
# cli_structured.sh — structured output and tool calls through `herd serve`
# with the official `openai` npm client, zod and ajv (tests/structured/check.cjs):
# a property test over random JSON Schemas on the shipped KJV llama (CASES of
# them: 12 here, 200 with `make structured`), zodResponseFormat, a tool-calling
# loop and the 400s of bad input; then LangChain's withStructuredOutput and
# bindTools (tests/structured/langchain.cjs). `make test-deps` installs the npm packages into
# build-deps/structured; without them the test is skipped (77).
set -u
HERD=$1
M=models/kjv-llama-q8_0.gguf
[ -f "$M" ] || { echo "skip: $M missing"; exit 77; }
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { echo "skip: node/npm not installed"; exit 77; }
dir=$(pwd)/build-deps/structured
[ -f "$dir/node_modules/ajv-formats/package.json" ] && [ -f "$dir/node_modules/@langchain/openai/package.json" ] ||
  { echo "skip: the npm clients are not in $dir (make test-deps installs them)"; exit 77; }
tmp=$(mktemp -d)
# One slot with a large context: the generic tool prompt is long in KJV tokens.
"$HERD" serve -m "$M" --port 0 --parallel 1 -c 4096 2>"$tmp/log" &
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
NPM_DIR="$dir" HERD_PORT=$port CASES=${CASES:-12} node tests/structured/check.cjs
rc=$?
NPM_DIR="$dir" HERD_PORT=$port node tests/structured/langchain.cjs || rc=1
kill -TERM $pid
wait $pid
src=$?
[ $src -eq 0 ] || { echo "FAIL: herd serve exited with $src after SIGTERM"; cat "$tmp/log"; rc=1; }
exit $rc
