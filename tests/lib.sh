# lib.sh — sourced by every tests/cli_*.sh (`. tests/lib.sh`; CTest runs them
# from the project root). The shell side of tests/helpers.c:
#
#   skip WHY          the whole test cannot run: exit 77, which CTest reports
#                     as skipped (SKIP_RETURN_CODE), never as passed;
#   skip_part WHY     one part cannot run: finish exits 77 unless a check failed;
#   need_shared F...  files under ../shared the test needs: a skip if one is
#                     missing, a failure under HERD_REQUIRE_SHARED=1 (CI);
#   have_shared F     for a part of a test: true if ../shared file F is there,
#                     else false after skip_part (a failure under
#                     HERD_REQUIRE_SHARED=1);
#   need_tool T...    programs the test needs (`make test-deps` installs them);
#   finish [FAIL]     exit 1 if FAIL (default $failed) is not 0, else 77 if a
#                     part was skipped, else 0;
#   TMP               a fresh temporary folder, removed when the test exits
#                     (tests that start processes add them to an EXIT trap of
#                     their own and call cleanup_tmp from it).

failed=0
skipped=0

skip() {
    echo "skip: $*"
    exit 77
}

skip_part() {
    echo "skip: $*"
    skipped=1
}

finish() {
    [ "${1:-$failed}" = 0 ] || exit 1
    [ "$skipped" = 0 ] || exit 77
    exit 0
}

need_shared() {
    for f in "$@"; do
        [ -e "$f" ] && continue
        if [ "${HERD_REQUIRE_SHARED:-0}" != 0 ]; then
            echo "FAIL: $f missing, and HERD_REQUIRE_SHARED is set"
            exit 1
        fi
        skip "$f missing"
    done
}

have_shared() {
    [ -e "$1" ] && return 0
    if [ "${HERD_REQUIRE_SHARED:-0}" != 0 ]; then
        echo "FAIL: $1 missing, and HERD_REQUIRE_SHARED is set"
        exit 1
    fi
    skip_part "$1 missing"
    return 1
}

need_tool() {
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || skip "$t not installed (make test-deps installs it)"
    done
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/herd-$(basename "$0" .sh).XXXXXX") || exit 1
cleanup_tmp() { rm -rf "$TMP"; }
trap cleanup_tmp EXIT
# A test stopped by a signal (ctest's timeout) still runs its EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM
