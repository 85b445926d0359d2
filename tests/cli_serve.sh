#!/bin/sh
# cli_serve.sh — `herd serve` as an operator meets it: a port in use and a
# model that fails to load each end with one line and a non-zero status; a
# non-loopback address without --api-key warns; SIGTERM drains and exits 0;
# /metrics passes `promtool check metrics` and deploy/'s Prometheus
# configurations `promtool check config` (skipped, 77, without promtool or
# curl); deploy/'s nginx configuration passes `nginx -t` when nginx is here.
set -u
HERD=$1
M=../shared/models/tiny/llama-f32.gguf
[ -f "$M" ] || { echo "skip: $M missing"; exit 77; }
tmp=$(mktemp -d)
fail=0
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
PATH=$PATH:/usr/sbin

start() { # log file, args...: sets pid and port
  log=$1; shift
  "$HERD" serve -m "$M" "$@" 2>"$log" &
  pid=$!
  port=""
  for i in $(seq 1 300); do
    port=$(sed -n 's/.*listening on [0-9.]* port \([0-9]*\).*/\1/p' "$log")
    [ -n "$port" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "FAIL: herd serve did not start"; cat "$log"; exit 1; }
}

start "$tmp/log" --port 0 --quiet
# A port in use: one line, status 1.
"$HERD" serve -m "$M" --port "$port" 2>"$tmp/busy"
rc=$?
n=$(wc -l <"$tmp/busy")
if [ $rc -eq 0 ] || [ "$n" -ne 1 ] || ! grep -q "port $port" "$tmp/busy"; then
  echo "FAIL: port in use: status $rc, $n lines:"; cat "$tmp/busy"; fail=1
fi
# A model that fails to load: one line, status 1.
printf 'GGUF\003\000\000\000' >"$tmp/bad.gguf"
"$HERD" serve -m "$tmp/bad.gguf" --port 0 2>"$tmp/badmodel"
rc=$?
n=$(wc -l <"$tmp/badmodel")
if [ $rc -eq 0 ] || [ "$n" -ne 1 ]; then
  echo "FAIL: bad model: status $rc, $n lines:"; cat "$tmp/badmodel"; fail=1
fi
# Metrics and configurations, with promtool.
if command -v promtool >/dev/null && command -v curl >/dev/null; then
  curl -s "http://127.0.0.1:$port/v1/completions" -d '{"prompt": "Hi", "max_tokens": 3}' >/dev/null
  curl -s "http://127.0.0.1:$port/metrics" >"$tmp/metrics"
  grep -q '^herd_time_to_first_token_seconds_count 1$' "$tmp/metrics" ||
    { echo "FAIL: no TTFT sample in /metrics"; fail=1; }
  promtool check metrics <"$tmp/metrics" || { echo "FAIL: promtool check metrics"; fail=1; }
  promtool check config deploy/prometheus/prometheus.yml deploy/prometheus/prometheus-k8s.yml \
      >/dev/null || { echo "FAIL: promtool check config"; fail=1; }
  checked=1
fi
kill -TERM $pid
wait $pid
rc=$?
pid=""
[ $rc -eq 0 ] || { echo "FAIL: SIGTERM: exit $rc"; cat "$tmp/log"; fail=1; }
grep -q "draining" "$tmp/log" || { echo "FAIL: SIGTERM did not drain"; cat "$tmp/log"; fail=1; }
# Any address but loopback, without a key: a warning.
start "$tmp/log2" --host 0.0.0.0 --port 0 --quiet
kill -INT $pid
wait $pid
pid=""
grep -q "warning: listening on 0.0.0.0 without --api-key" "$tmp/log2" ||
  { echo "FAIL: no warning for 0.0.0.0 without a key"; cat "$tmp/log2"; fail=1; }
if command -v nginx >/dev/null; then
  mkdir -p "$tmp/ngx"
  printf 'pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp { include %s/deploy/nginx/herd.conf; }\n' \
      "$tmp" "$(pwd)" >"$tmp/nginx.conf"
  nginx -q -t -p "$tmp/ngx" -c "$tmp/nginx.conf" || { echo "FAIL: nginx -t"; fail=1; }
fi
[ $fail -eq 0 ] && [ -z "${checked:-}" ] && { echo "skip: promtool or curl not installed"; exit 77; }
exit $fail
