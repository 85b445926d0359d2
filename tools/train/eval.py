"""Checks a shipped model against PyTorch and llama.cpp; writes BUILD/<name>.eval.json.

  /usr/bin/python3 eval.py ../../models/kjv-llama-q8_0.gguf --herd /tmp/build/herd [--oracle ../../../shared/oracle/oracle]

1. Held-out perplexity by llama.cpp's method (llama-perplexity): the held-out ids (BOS,
   then the whole text) cut into non-overlapping chunks of n_ctx tokens, the first token
   of each chunk replaced by BOS, and only the second half of each chunk scored (the
   predictions at positions n_ctx/2 .. n_ctx-2). Computed twice on the same ids:
   from PyTorch (model.py with the file's dequantized Q8_0 weights) and from
   `herd logits` (one call per chunk). Also records the largest and mean |herd - PyTorch|
   logit difference over every position of every chunk, their top-1 agreement, and the
   largest difference from PyTorch with ggml's roundings (model.py, ggml_numerics).
2. llama.cpp's own figure: `oracle perplexity MODEL heldout.txt -c n_ctx` (it tokenizes
   the text itself), and herd's `herd perplexity` on the same file.
   herd's logits of the first chunks are also compared with `oracle logits`.
3. Greedy continuations of "And God said" (32 tokens) from llama.cpp and herd, and the
   length and text tests/cli_models.sh checks (record_test.py writes them there).
"""

import argparse
import json
import math
import os
import re
import subprocess
import tempfile

import numpy as np
import torch

import gguf
from model import TinyLM, config_from_gguf

PROMPT = "And God said"
ORACLE_LOGIT_CHUNKS = 4  # chunks whose logits are also compared with llama.cpp's
MIN_GAP = 0.03  # smallest top1-top2 logit gap a test's greedy continuation may pass through


def chunk_nll(logits, chunk):
    """Sum of NLL (float64) over llama-perplexity's scored positions, and their count."""
    n = len(chunk)
    first = n // 2
    lp = torch.log_softmax(torch.as_tensor(logits[first:n - 1], dtype=torch.float64), dim=-1)
    tgt = torch.as_tensor(chunk[first + 1:n], dtype=torch.long)
    return -lp.gather(1, tgt[:, None]).sum().item(), n - 1 - first


def herd_logits(herd, model, ids, n_vocab, threads):
    with tempfile.NamedTemporaryFile(suffix=".f32") as f:
        subprocess.run([herd, "logits", "-m", model, "--ids", " ".join(map(str, ids)), "--out", f.name,
                        "-c", str(len(ids)), "-t", str(threads)], check=True, capture_output=True)
        return np.fromfile(f.name, dtype=np.float32).reshape(len(ids), n_vocab)


def oracle_logits(oracle, model, ids, n_vocab):
    with tempfile.NamedTemporaryFile(suffix=".f32") as f:
        subprocess.run([oracle, "logits", model, "--ids", " ".join(map(str, ids)), "--out", f.name,
                        "-c", str(len(ids))], check=True, capture_output=True)
        return np.fromfile(f.name, dtype=np.float32).reshape(len(ids), n_vocab)


def oracle_perplexity(oracle, model, text_file, n_ctx, n_chunks):
    out = subprocess.run([oracle, "perplexity", model, text_file, "-c", str(n_ctx), "--chunks", str(n_chunks)],
                         capture_output=True, text=True)
    text = out.stdout + out.stderr
    m = re.search(r"Final estimate: PPL = ([0-9.]+)", text)
    return (float(m.group(1)) if m else None), [l for l in text.splitlines() if l.startswith(("Final", "perp"))]


def greedy(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    return out.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--herd", required=True)
    ap.add_argument("--oracle", default=None)
    ap.add_argument("--build", default="build")
    ap.add_argument("--ctx", type=int, default=None, help="perplexity chunk size (default: the model's n_ctx)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=None, help="only the first K chunks (a quick check)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    meta, tensors, _ = gguf.read_gguf(args.model)
    cfg = config_from_gguf(meta)
    model = TinyLM(cfg)
    model.load_gguf_weights(tensors)
    model.eval()
    n_ctx = args.ctx or cfg.n_ctx
    bos = meta["tokenizer.ggml.bos_token_id"]
    ids = np.fromfile(os.path.join(args.build, "heldout.ids"), dtype=np.uint16).astype(np.int64)
    n_chunks = len(ids) // n_ctx
    if args.chunks:
        n_chunks = min(n_chunks, args.chunks)

    nll_pt = nll_herd = 0.0
    count = agree = positions = 0
    max_diff = max_diff_g = max_diff_o = sum_diff = 0.0
    for i in range(n_chunks):
        chunk = ids[i * n_ctx:(i + 1) * n_ctx].copy()
        chunk[0] = bos
        with torch.no_grad():
            model.ggml_numerics = False
            lp = model(torch.as_tensor(chunk)[None])[0].numpy()
            model.ggml_numerics = True
            lg = model(torch.as_tensor(chunk)[None])[0].numpy()
        lh = herd_logits(args.herd, args.model, chunk, cfg.n_vocab, args.threads)
        max_diff = max(max_diff, float(np.abs(lp - lh).max()))
        max_diff_g = max(max_diff_g, float(np.abs(lg - lh).max()))
        if args.oracle and i < ORACLE_LOGIT_CHUNKS:
            lo = oracle_logits(args.oracle, args.model, chunk, cfg.n_vocab)
            max_diff_o = max(max_diff_o, float(np.abs(lo - lh).max()))
        sum_diff += float(np.abs(lp - lh).sum())
        agree += int((lp.argmax(1) == lh.argmax(1)).sum())
        positions += len(chunk)
        a, n = chunk_nll(lp, chunk)
        b, _ = chunk_nll(lh, chunk)
        nll_pt += a
        nll_herd += b
        count += n
    ppl_pt, ppl_herd = math.exp(nll_pt / count), math.exp(nll_herd / count)
    res = {"model": os.path.basename(args.model), "arch": cfg.arch, "n_ctx": n_ctx, "chunks": n_chunks,
           "scored_tokens": count, "ppl_pytorch": ppl_pt, "ppl_herd": ppl_herd,
           "ppl_rel_diff": abs(ppl_herd - ppl_pt) / ppl_pt,
           "max_abs_logit_diff": max_diff, "mean_abs_logit_diff": sum_diff / positions / cfg.n_vocab,
           "max_abs_logit_diff_vs_ggml_numerics": max_diff_g, "top1_agreement": agree / positions,
           f"max_abs_logit_diff_herd_vs_llamacpp_first{ORACLE_LOGIT_CHUNKS}chunks": max_diff_o if args.oracle else None,
           "max_abs_logit": float(np.abs(lp).max())}
    print(json.dumps(res, indent=1), flush=True)

    # herd prints the prompt, then the continuation.
    res["herd_greedy32"] = greedy([args.herd, "run", "-m", args.model, "-p", PROMPT, "-n", "32",
                                   "--temp", "0"]).rstrip("\n")
    # herd's own `herd perplexity` (it tokenizes the text itself), where this herd has it.
    out = subprocess.run([args.herd, "perplexity", "-m", args.model, "-f", os.path.join(args.build, "heldout.txt"),
                          "-c", str(n_ctx), "--chunks", str(n_chunks)], capture_output=True, text=True)
    m = re.search(r"Final estimate: PPL = ([0-9.]+)", out.stdout + out.stderr)
    res["ppl_herd_perplexity_cmd"] = float(m.group(1)) if m else None
    if args.oracle:
        res["ppl_llamacpp"], res["llamacpp_ppl_log"] = oracle_perplexity(
            args.oracle, args.model, os.path.join(args.build, "heldout.txt"), n_ctx, n_chunks)
        # oracle generate prints the generated ids, then their text; the prompt's ids
        # (without BOS) and the generated ids detokenize to the whole text herd prints.
        gen_ids = greedy([args.oracle, "generate", args.model, "-p", PROMPT, "-n", "32"]).split("\n")[0].split()
        assert len(gen_ids) == 32, "oracle generate stopped early"
        prompt_ids = greedy([args.oracle, "tokenize", args.model, PROMPT, "--no-bos"]).split()
        res["llamacpp_greedy32_ids"] = " ".join(gen_ids)
        res["llamacpp_greedy32"] = greedy([args.oracle, "detokenize", args.model] + prompt_ids + gen_ids).rstrip("\n")
        res["greedy_equal"] = res["llamacpp_greedy32"] == res["herd_greedy32"]

        # For tests/cli_models.sh: llama.cpp's top1-top2 logit gap at each generated token;
        # the test checks the longest prefix (16..32 tokens) whose gaps are all >= MIN_GAP,
        # so that a ~1e-2 change in herd's rounding cannot flip a near-tie.
        prompt_ids_bos = greedy([args.oracle, "tokenize", args.model, PROMPT]).split()
        full = [int(x) for x in prompt_ids_bos + gen_ids]
        lo = oracle_logits(args.oracle, args.model, full[:-1], cfg.n_vocab)[len(prompt_ids_bos) - 1:]
        top2 = np.sort(lo, axis=1)[:, -2:]
        gaps = top2[:, 1] - top2[:, 0]
        n_test = next((n for n in range(len(gaps)) if gaps[n] < MIN_GAP), len(gaps))
        res["greedy32_top2_gaps"] = [round(float(g), 4) for g in gaps]
        res["test_n"] = max(16, n_test)
        res["test_text"] = greedy([args.oracle, "detokenize", args.model] + prompt_ids
                                  + gen_ids[:res["test_n"]]).rstrip("\n")
    print(json.dumps({k: v for k, v in res.items() if k != "llamacpp_ppl_log"}, indent=1))
    name = os.path.splitext(os.path.basename(args.model))[0]
    with open(os.path.join(args.build, name + ".eval.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
