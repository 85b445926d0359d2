#!/bin/sh
# cli_readme.sh — README's command lines run as written after `make install`:
# the build is installed into a temporary PREFIX (what `make install` runs),
# whose bin/ goes first on PATH, and every line of the ```sh block under
# "## Using it" runs in a scratch folder that sees the repository's models/
# and tests/ as README's lines expect. A line that fails fails the test.
#
# `herd serve` runs until stopped: it must start listening, then is stopped.
# The synth/quantize pair writes 1.9 GB and is skipped (said so) under ASan,
# where it would take most of the suite's time.
set -u
HERD=$1
case $HERD in /*) ;; *) HERD=$(pwd)/$HERD ;; esac
ROOT=$(pwd)
BUILD=$(dirname "$HERD")
[ -f "$BUILD/cmake_install.cmake" ] || { echo "skip: $BUILD is not a CMake build folder"; exit 77; }
TMP=$(mktemp -d /tmp/herd-readme.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# What `make install` does, into a scratch PREFIX.
cmake --install "$BUILD" --prefix "$TMP/prefix" >/dev/null || { echo "FAIL: install"; exit 1; }
for f in bin/herd lib/libherd.a include/herd.h; do
    [ -f "$TMP/prefix/$f" ] || bad "make install did not install $f"
done
PATH=$TMP/prefix/bin:$PATH
export PATH

# The lines: README's first ```sh block after "## Using it".
awk '/^## Using it/ { on = 1 } on && /^```sh/ { inb = 1; next } inb && /^```/ { exit } inb' \
    README.md >"$TMP/lines"
[ "$(wc -l <"$TMP/lines")" -ge 10 ] || { echo "FAIL: README's command block not found"; exit 1; }
mkdir "$TMP/work"
ln -s "$ROOT/models" "$TMP/work/models"
ln -s "$ROOT/tests" "$TMP/work/tests"
asan=0
nm "$HERD" 2>/dev/null | grep -q __asan_init && asan=1

n=0
while IFS= read -r line; do
    case $line in '' | '#'*) continue ;; esac
    n=$((n + 1))
    case $line in
    M=*) eval "$line"; continue ;; # the variable the other lines use
    *"herd synth "* | *"herd quantize "*)
        if [ $asan = 1 ]; then echo "skip (ASan): $line"; continue; fi ;;
    esac
    case $line in
    *"herd serve "*)
        (cd "$TMP/work" && M=$M timeout -s INT 20 sh -c "$line" >"$TMP/serve.out" 2>&1) &
        pid=$!
        up=0
        for _ in $(seq 1 40); do
            grep -qi "listening" "$TMP/serve.out" 2>/dev/null && { up=1; break; }
            grep -qi "address already in use" "$TMP/serve.out" 2>/dev/null && { up=2; break; }
            sleep 0.5
        done
        kill -INT "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        case $up in
        1) echo "ok: $line" ;;
        2) echo "skip: port in use here: $line" ;;
        *) bad "$line: did not start: $(cat "$TMP/serve.out")" ;;
        esac
        continue ;;
    esac
    if (cd "$TMP/work" && M=$M sh -c "$line" </dev/null >"$TMP/out" 2>"$TMP/err"); then
        echo "ok: $line"
    else
        bad "$line: $(tail -2 "$TMP/err")"
    fi
done <"$TMP/lines"
[ "$n" -ge 10 ] || bad "only $n lines"
exit $fail
