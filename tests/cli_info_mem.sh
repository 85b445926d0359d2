#!/bin/sh
# cli_info_mem.sh — `herd info M -c CTX --parallel N` estimates the memory a
# run needs (weights + KV cache + scratch); check it against the peak RSS of a
# real run, within 10%.
#
# The model is a random-weight TinyLlama-1.1B in Q4_0 (`herd synth`, ~600 MB),
# big enough that the process's fixed cost (binary, libraries, thread stacks:
# ~6 MB) does not dominate. The run is `herd logits` over a full context of
# CTX tokens in one batch with every position's logits: that touches every
# weight (all of the mmapped file but the rows of token_embd that no token
# uses), every KV cell and every scratch buffer, i.e. the peak the estimate is
# for. Peak RSS is the child's ru_maxrss (getrusage RUSAGE_CHILDREN, through
# python3: /usr/bin/time is not installed by default).
#
# Skipped (exit 77) under AddressSanitizer: its shadow memory and quarantine
# are not herd's memory, and the 1.1B run would take minutes.
set -u
HERD=$1
case $HERD in /*) ;; *) HERD=$(pwd)/$HERD ;; esac
. tests/lib.sh
if ldd "$HERD" 2>/dev/null | grep -q libasan; then skip "ASan build (RSS is not herd's)"; fi
need_tool python3
need_shared ../shared/vocab/ggml-vocab-llama-spm.gguf
fail=0
CTX=128
M=$TMP/tinyllama-q4_0.gguf
"$HERD" synth --shape tinyllama-1.1b --type q4_0 -o "$M" 2>"$TMP/synth.err" ||
    { echo "FAIL: synth"; cat "$TMP/synth.err"; exit 1; }

# The estimate, in MiB, for one sequence and for four.
mib() { sed -n "s/^  $1 *\([0-9.]*\) MiB$/\1/p" "$TMP/$2"; }
"$HERD" info "$M" -c $CTX -b $CTX >"$TMP/info1" || { echo "FAIL: info"; exit 1; }
"$HERD" info "$M" -c $CTX -b $CTX --parallel 4 >"$TMP/info4" || { echo "FAIL: info --parallel"; exit 1; }
grep -q "^memory at -c $CTX, --parallel 4:" "$TMP/info4" || { echo "FAIL: --parallel not shown"; fail=1; }
total=$(mib total info1)
weights=$(mib weights info1)
[ -n "$total" ] && [ -n "$weights" ] || { echo "FAIL: no estimate in herd info"; cat "$TMP/info1"; exit 1; }
# Full attention: the KV cache is one pool of CTX cells whatever the number of
# sequences (as llama.cpp's unified cache), so the total does not change.
[ "$(mib total info4)" = "$total" ] || { echo "FAIL: --parallel 4 changed a full-attention estimate"; fail=1; }

# The measured peak of a full-context run.
ids=$(python3 -c "import random; random.seed(1); print(' '.join(str(random.randrange(3, 32000)) for _ in range($CTX)))")
peak=$(python3 - "$HERD" "$M" "$CTX" "$ids" <<'EOF'
import resource, subprocess, sys
herd, model, ctx, ids = sys.argv[1:]
subprocess.run([herd, "logits", "-m", model, "-c", ctx, "-b", ctx, "--ids", ids, "--out", "/dev/null"],
               check=True, stderr=subprocess.DEVNULL)
print("%.2f" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0))
EOF
) || { echo "FAIL: the measured run failed"; exit 1; }
echo "estimate $total MiB (weights $weights MiB), measured peak RSS $peak MiB"
python3 -c "import sys; e, p = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(p - e) <= 0.10 * e else 1)" \
    "$total" "$peak" || { echo "FAIL: estimate $total MiB is not within 10% of the peak RSS $peak MiB"; fail=1; }

# A sliding window: each sequence keeps W - 1 + n_batch cells, so --parallel
# grows the cache (llama-swa-f32: window 8).
S=../shared/models/tiny/llama-swa-f32.gguf
if [ -f "$S" ]; then
    "$HERD" info "$S" -c 16384 -b 2048 >"$TMP/swa1" && "$HERD" info "$S" -c 16384 -b 2048 --parallel 4 >"$TMP/swa4" ||
        { echo "FAIL: info on $S"; fail=1; }
    k1=$(mib "KV cache" swa1)
    k4=$(mib "KV cache" swa4)
    python3 -c "import sys; sys.exit(0 if abs(float(sys.argv[2]) - 4 * float(sys.argv[1])) < 0.02 else 1)" "$k1" "$k4" ||
        { echo "FAIL: SWA KV cache $k1 MiB for one sequence, $k4 MiB for four"; fail=1; }
fi
finish $fail
