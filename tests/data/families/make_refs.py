#!/usr/bin/env python3
"""Make the references of tests/test_families.c from llama.cpp, through the
oracle (../shared/oracle/oracle), never from herd.

For each case: `herd synth` writes the tiny F32 model (the file llama.cpp and
herd both read), `oracle quantize` makes its Q8_0 / Q4_K_M files (llama-quantize),
and `oracle logits` / `oracle generate` give llama.cpp's logits at every
position of a 100-token prompt and its 16-token greedy continuation.

Stored, compactly (refs.json plus one NAME.i16 per case):
  the FNV-1a 64 hash of the synth file and of llama-quantize's file, so that
  the test knows its herd-made files are the same bytes llama.cpp read;
  the prompt ids, the context size, the greedy ids;
  the logits as int16 with one scale per case (value = i16 * scale; the
  rounding error, at most scale / 2, is about 3e-5 here, far below 5e-3).

Run from the project root after building: python3 tests/data/families/make_refs.py
"""
import json, os, random, struct, subprocess, sys, tempfile, array

ROOT = os.path.dirname(os.path.abspath(__file__))
HERD = os.environ.get("HERD_BIN", "build/herd")
ORACLE = os.environ.get("ORACLE", "../shared/oracle/oracle")
N_PROMPT, N_GEN, N_VOCAB = 100, 16, 512

# (arch, shape, types, context): gemma's 32-token windows are shorter than
# the prompt; phi3 at -c 512 passes its original context (256) and takes the
# long LongRoPE factors, at -c 256 the short ones.
CASES = [
    ("gemma2", "tiny", ["f32", "q8_0", "q4_k_m"], 256),
    ("gemma3", "tiny", ["f32", "q8_0", "q4_k_m"], 256),
    ("phi3", "tiny", ["f32", "q8_0", "q4_k_m"], 256),
    ("phi3", "tiny-separate", ["f32"], 256),
    ("phi3", "tiny", ["f32"], 512),
]
SEEDS = [1, 2]


def fnv1a(path):
    h = 0xcbf29ce484222325
    with open(path, "rb") as f:
        for b in f.read():
            h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True, errors="replace")
    if r.returncode:
        sys.exit("failed: %s\n%s" % (" ".join(args), r.stderr[-2000:]))
    return r.stdout


def main():
    tmp = tempfile.mkdtemp()
    index = []
    for arch, shape, types, ctx in CASES:
        for seed in SEEDS:
            f32 = os.path.join(tmp, "%s-%s-%d-f32.gguf" % (arch, shape, seed))
            if not os.path.exists(f32):
                run(HERD, "synth", "--arch", arch, "--shape", shape, "--seed", str(seed),
                    "--type", "f32", "-o", f32)
            rnd = random.Random(1000 * seed + len(arch))
            ids = [rnd.randrange(N_VOCAB) for _ in range(N_PROMPT)]
            for t in types:
                path = f32
                if t != "f32":
                    path = os.path.join(tmp, "%s-%s-%d-%s.gguf" % (arch, shape, seed, t))
                    run(ORACLE, "quantize", f32, path, t)
                name = "%s-%s-s%d-%s-c%d" % (arch, shape, seed, t, ctx)
                out = os.path.join(tmp, name + ".f32")
                id_str = " ".join(map(str, ids))
                run(ORACLE, "logits", path, "--ids", id_str, "--out", out, "-c", str(ctx))
                gen = run(ORACLE, "generate", path, "--ids", id_str, "-n", str(N_GEN),
                          "-c", str(ctx)).split("\n")[0].split()
                vals = array.array("f")
                with open(out, "rb") as fh:
                    vals.frombytes(fh.read())
                assert len(vals) == N_PROMPT * N_VOCAB, (name, len(vals))
                scale = max(abs(v) for v in vals) / 32767.0
                q = array.array("h", [int(round(v / scale)) for v in vals])
                with open(os.path.join(ROOT, name + ".i16"), "wb") as fh:
                    q.tofile(fh)  # little-endian on every machine herd runs on
                index.append({"name": name, "arch": arch, "shape": shape, "seed": seed,
                              "type": t, "n_ctx": ctx, "synth_fnv": fnv1a(f32),
                              "file_fnv": fnv1a(path), "ids": ids,
                              "greedy": [int(g) for g in gen], "scale": scale,
                              "n_vocab": N_VOCAB})
                print(name, "scale %.3g" % scale, "greedy", len(gen), file=sys.stderr)
    with open(os.path.join(ROOT, "refs.json"), "w") as fh:
        json.dump({"made_by": "tests/data/families/make_refs.py (llama.cpp via the oracle)",
                   "cases": index}, fh, indent=1)


if __name__ == "__main__":
    main()
