#!/bin/sh
# make_refs.sh — llama.cpp's references for tests/test_families.c.
#
# For each parity shape of `herd synth` (below) and seeds 1 and 2: write the
# F32 file with herd synth, quantize it to Q8_0 and Q4_K_M with herd quantize
# (byte for byte llama-quantize's, tests/test_quantize.c), and ask llama.cpp
# (../shared/oracle/oracle) for
#   the logits of a 100-token prompt, in one batch (n_ctx 256), every position:
#     NAME.logits.f16, float16 [100][n_vocab] (the test allows for the
#     rounding: half an F16 ulp of each value, at most 1e-3 here);
#   the greedy 16-token continuation of that prompt (oracle generate).
# NAME.json holds the prompt, the continuation, and the FNV-1a 64 hash of the
# F32 file, so that the test knows the file it regenerates from the seed is
# the one llama.cpp saw.
#
# Run from the project root after building: sh tests/ref/families/make_refs.sh
# (needs python3 and the oracle; takes about a minute).
set -eu
HERD=${HERD:-build/herd}
ORACLE=${ORACLE:-../shared/oracle/oracle}
OUT=tests/ref/families
TMP=$(mktemp -d /tmp/herd-families.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# The prompt: 100 ids of the 512-token vocabulary, fixed.
IDS=$(python3 -c "import random; random.seed(16); print(' '.join(str(random.randrange(0, 511)) for _ in range(100)))")

for case in "llama tiny" "llama tiny-llama3.1" "llama tiny-nemo" "qwen2 tiny" "qwen3 tiny" \
            "qwen3moe tiny"; do
    set -- $case
    arch=$1 shape=$2
    for seed in 1 2; do
        base="$arch-$shape-s$seed"
        f32="$TMP/$base-f32.gguf"
        "$HERD" synth --arch "$arch" --shape "$shape" --seed "$seed" -o "$f32" 2>/dev/null
        hash=$(python3 - "$f32" <<'PY'
import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], "rb").read():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
print("%016x" % h)
PY
)
        for type in f32 q8_0 q4_k_m; do
            name="$base-$type"
            model="$f32"
            if [ "$type" != f32 ]; then
                model="$TMP/$name.gguf"
                "$HERD" quantize -q "$f32" "$model" "$type"
            fi
            "$ORACLE" logits "$model" --ids "$IDS" -c 256 --out "$TMP/$name.logits" >/dev/null 2>&1
            greedy=$("$ORACLE" generate "$model" --ids "$IDS" -n 16 -c 256 2>/dev/null | head -n 1)
            python3 - "$TMP/$name.logits" "$OUT/$name" "$arch" "$shape" "$seed" "$type" "$hash" \
                "$IDS" "$greedy" <<'PY'
import array, json, struct, sys
src, dst, arch, shape, seed, typ, h, ids, greedy = sys.argv[1:]
x = array.array("f", open(src, "rb").read())
ids = [int(t) for t in ids.split()]
greedy = [int(t) for t in greedy.split()]
assert len(x) % len(ids) == 0 and len(greedy) == 16
open(dst + ".logits.f16", "wb").write(struct.pack("<%de" % len(x), *x))
json.dump({"arch": arch, "shape": shape, "seed": int(seed), "type": typ,
           "synth_f32_fnv1a64": h, "n_vocab": len(x) // len(ids), "ids": ids,
           "logits": dst.split("/")[-1] + ".logits.f16", "greedy16": greedy,
           "made_by": "oracle logits --ids IDS -c 256 (one batch); oracle generate -n 16 -c 256"},
          open(dst + ".json", "w"), indent=1)
PY
            echo "$name: greedy $greedy"
        done
    done
done
