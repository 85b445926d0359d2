#!/bin/sh
# cli_skip.sh — tests that cannot run say so: from a checkout without
# ../shared, a C test (test_parity) and a shell test (cli_compare) exit 77,
# which CTest counts as skipped, and with HERD_REQUIRE_SHARED=1 (CI) they fail.
# The checkout is a folder of links to this one's files, with no ../shared.
set -u
HERD=$1
case $HERD in /*) ;; *) HERD=$(pwd)/$HERD ;; esac
BUILD=$(dirname "$HERD")
. tests/lib.sh
fail=0
mkdir -p "$TMP/clone"
for f in models tests data include src; do ln -s "$(pwd)/$f" "$TMP/clone/$f"; done
[ -e "$TMP/shared" ] && { echo "FAIL: $TMP/shared exists"; exit 1; }
expect() { # WANT ENV COMMAND...
    want=$1 env=$2
    shift 2
    (cd "$TMP/clone" && env $env "$@" >"$TMP/out" 2>&1)
    rc=$?
    if [ "$rc" != "$want" ]; then
        echo "FAIL: $env $*: exit $rc, want $want"; tail -5 "$TMP/out"; fail=1
    fi
}
expect 77 HERD_REQUIRE_SHARED=0 "$BUILD/test_parity"
expect 1 HERD_REQUIRE_SHARED=1 "$BUILD/test_parity"
expect 77 HERD_REQUIRE_SHARED=0 sh tests/cli_compare.sh "$HERD"
expect 1 HERD_REQUIRE_SHARED=1 sh tests/cli_compare.sh "$HERD"
grep -q "HERD_REQUIRE_SHARED" "$TMP/out" || { echo "FAIL: the failure does not say why"; fail=1; }
finish $fail
