"""Trains one tiny KJV model and exports it to GGUF (Q8_0 matrices, F32 norms and biases).

  /usr/bin/python3 train.py --arch llama --out ../../models/kjv-llama-q8_0.gguf

Reproducible: the seed fixes the initialization and every batch; the run is a fixed
number of steps (not a time budget). Batches are random windows of the training ids,
each preceded by BOS, as llama.cpp's perplexity sees a chunk (BOS, then text from the
middle of the file) and as a prompt is fed (BOS, then text).
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

import gguf
from model import Config, TinyLM

# Shapes chosen so that 700 steps (the default) train in at most ~30 minutes each on this machine's
# busy CPU (see README.md).
PRESETS = {
    "llama":    dict(n_embd=192, n_layer=4, n_head=6, n_ff=512, n_rot=32),
    "stablelm": dict(n_embd=192, n_layer=4, n_head=6, n_ff=512, n_rot=8),
    "phi2":     dict(n_embd=192, n_layer=4, n_head=6, n_ff=768, n_rot=16),
}
FILE_TYPE_MOSTLY_Q8_0 = 7
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6


def batches(ids, n, ctx, bos, gen):
    """n random windows: inputs [BOS, t0 .. t_{ctx-2}], targets [t0 .. t_{ctx-1}]."""
    starts = torch.randint(0, len(ids) - ctx, (n,), generator=gen)
    tgt = torch.stack([ids[s:s + ctx] for s in starts.tolist()])
    inp = torch.cat([torch.full((n, 1), bos, dtype=torch.long), tgt[:, :-1]], dim=1)
    return inp, tgt


@torch.no_grad()
def heldout_nll(model, ids, ctx, bos, max_chunks=None):
    """Mean NLL over non-overlapping chunks (BOS first), every position scored."""
    n = (len(ids) - 1) // (ctx - 1)
    if max_chunks:
        n = min(n, max_chunks)
    total, count = 0.0, 0
    for i in range(n):
        tgt = ids[i * (ctx - 1):(i + 1) * (ctx - 1) + 1]
        inp = torch.cat([torch.tensor([bos]), tgt[:-1]])[None]
        logits = model(inp)[0]
        total += F.cross_entropy(logits, tgt, reduction="sum").item()
        count += len(tgt)
    return total / count


def lr_at(step, steps, peak, warmup):
    """Linear warmup, then cosine decay to 10% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def export_gguf(model, sp, path, name, description):
    """Writes the model as GGUF v3: 2-D matrices Q8_0, everything else F32."""
    c = model.c
    w = gguf.GGUFWriter()
    a = c.arch
    w.add_string("general.architecture", a)
    w.add_string("general.name", name)
    w.add_string("general.description", description)
    w.add_string("general.license", "cc0-1.0")
    w.add_u32("general.file_type", FILE_TYPE_MOSTLY_Q8_0)
    w.add_u32(f"{a}.vocab_size", c.n_vocab)
    w.add_u32(f"{a}.context_length", c.n_ctx)
    w.add_u32(f"{a}.embedding_length", c.n_embd)
    w.add_u32(f"{a}.block_count", c.n_layer)
    w.add_u32(f"{a}.feed_forward_length", c.n_ff)
    w.add_u32(f"{a}.attention.head_count", c.n_head)
    w.add_u32(f"{a}.attention.head_count_kv", c.n_head)
    w.add_u32(f"{a}.rope.dimension_count", c.n_rot)
    w.add_f32(f"{a}.rope.freq_base", c.rope_base)
    eps_key = "layer_norm_rms_epsilon" if a == "llama" else "layer_norm_epsilon"
    w.add_f32(f"{a}.attention.{eps_key}", c.norm_eps)

    # SentencePiece vocabulary, as llama.cpp's convert script writes an SPM tokenizer.
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(TOKEN_UNKNOWN)
        elif sp.is_control(i):
            types.append(TOKEN_CONTROL)
        elif sp.is_byte(i):
            types.append(TOKEN_BYTE)
        elif sp.is_unused(i):
            types.append(TOKEN_UNUSED)
        else:
            types.append(TOKEN_NORMAL)
    w.add_string("tokenizer.ggml.model", "llama")
    w.add_string("tokenizer.ggml.pre", "default")
    w.add_array("tokenizer.ggml.tokens", gguf.STRING, tokens)
    w.add_array("tokenizer.ggml.scores", gguf.FLOAT32, scores)
    w.add_array("tokenizer.ggml.token_type", gguf.INT32, types)
    w.add_u32("tokenizer.ggml.bos_token_id", sp.bos_id())
    w.add_u32("tokenizer.ggml.eos_token_id", sp.eos_id())
    w.add_u32("tokenizer.ggml.unknown_token_id", sp.unk_id())
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_eos_token", False)

    for tname, arr in model.gguf_tensors():
        w.add_tensor(tname, arr, gguf.GGML_Q8_0 if arr.ndim == 2 else gguf.GGML_F32)
    w.write(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=sorted(PRESETS), required=True)
    ap.add_argument("--out", required=True, help="GGUF file to write")
    ap.add_argument("--build", default="build", help="data.py's output directory")
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1611)  # the year the KJV was printed
    ap.add_argument("--threads", type=int, default=int(os.environ.get("TRAIN_THREADS", "1")))
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    b = lambda f: os.path.join(args.build, f)
    sp = spm.SentencePieceProcessor(model_file=b("kjv.model"))
    train_ids = torch.from_numpy(np.fromfile(b("train.ids"), dtype=np.uint16).astype(np.int64))
    held_ids = torch.from_numpy(np.fromfile(b("heldout.ids"), dtype=np.uint16).astype(np.int64))
    bos = sp.bos_id()

    c = Config(arch=args.arch, n_vocab=sp.get_piece_size(), n_ctx=args.ctx, **PRESETS[args.arch])
    model = TinyLM(c)
    print(f"{args.arch}: {model.n_params()} parameters, {c}", flush=True)

    # AdamW; weight decay on matrices only (not on norms, biases).
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        inp, tgt = batches(train_ids, args.batch, args.ctx, bos, gen)
        loss = F.cross_entropy(model(inp).flatten(0, 1), tgt.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == args.steps - 1:
            msg = f"step {step} loss {loss.item():.4f} lr {opt.param_groups[0]['lr']:.2e} {time.time() - t0:.0f}s"
            if step % 200 == 0 or step == args.steps - 1:
                model.eval()
                msg += f" heldout ppl(32 chunks) {math.exp(heldout_nll(model, held_ids, args.ctx, bos, 32)):.3f}"
                model.train()
            print(msg, flush=True)
    train_s = time.time() - t0
    model.eval()
    ppl = math.exp(heldout_nll(model, held_ids, args.ctx, bos))
    print(f"trained in {train_s:.0f}s; held-out ppl (float32, all positions) {ppl:.3f}", flush=True)

    torch.save({"config": c.to_dict(), "state": model.state_dict()}, b(f"{args.arch}.pt"))
    name = f"kjv-{args.arch}"
    desc = (f"herd's tiny {args.arch}-style model trained on the King James Bible (public domain), "
            f"{model.n_params()} parameters, tools/train in herd")
    export_gguf(model, sp, args.out, name, desc)
    with open(b(f"{args.arch}.train.json"), "w") as f:
        json.dump({"arch": args.arch, "params": model.n_params(), "config": c.to_dict(), "args": vars(args),
                   "train_seconds": round(train_s), "heldout_ppl_f32_all_positions": ppl}, f, indent=1)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
