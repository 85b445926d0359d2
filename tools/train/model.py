"""PyTorch definitions of the tiny KJV models, in GGUF's own terms.

One module, `TinyLM`, covers the three shipped families; a `Config` says which:

  llama     RMSNorm, q/k/v/o without biases, RoPE "normal" mode (consecutive pairs)
            over the whole head, SwiGLU MLP, sequential residual, separate output.
  stablelm  (StableLM-2 1.6B layout) LayerNorm with bias, q/k/v biases, no attn_output
            bias, RoPE NEOX mode (pairs i, i + n_rot/2) over the first n_rot dims of each
            head, ffn_norm, SwiGLU MLP, sequential residual, separate output.
  phi2      one LayerNorm (with bias) feeds attention and the GELU MLP in parallel,
            biases everywhere, RoPE NEOX partial rotary, output with bias.

The parameter names are the GGUF tensor names (with "." replaced by "_" where PyTorch
needs it), and every weight keeps GGUF's row layout, so export and re-import are a plain
copy: see `gguf_tensors` and `load_gguf_weights`. The forward pass is the independent
reference herd's logits are compared with: plain float32 math (tanh GELU, as ggml uses).

`TinyLM.ggml_numerics = True` adds, for comparison only, the roundings ggml's CPU backend
applies with Q8_0 weights (../shared/models/tiny/README.md, Numerics): each matrix
product's input quantized to Q8_0 (blocks of 32, F16 scale), K and V rounded to F16
(the KV cache), GELU's input and output rounded to F16 (its F16 table). It shows how much
of herd's difference from the plain float32 reference those roundings explain.
"""

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

@dataclass
class Config:
    arch: str = "llama"
    n_vocab: int = 2000
    n_ctx: int = 256
    n_embd: int = 256
    n_layer: int = 6
    n_head: int = 8
    n_ff: int = 704
    n_rot: int = 32          # rotary dims per head (partial rotary when < head_dim)
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self):
        return self.n_embd // self.n_head

    def to_dict(self):
        return asdict(self)


def rope(x, pos, n_rot, base, neox):
    """Rotates the first n_rot dims of each head of x [B, H, T, D] by position pos [T].

    normal mode (llama) rotates consecutive pairs (x0, x1), (x2, x3), ...; NEOX mode
    rotates (x_i, x_{i + n_rot/2}). theta_i = pos * base^(-2i/n_rot), as ggml computes it.
    """
    half = n_rot // 2
    inv = base ** (-torch.arange(half, dtype=torch.float32, device=x.device) * 2.0 / n_rot)
    ang = pos.to(torch.float32)[:, None] * inv[None, :]          # [T, half]
    cos, sin = torch.cos(ang), torch.sin(ang)
    xr, xp = x[..., :n_rot], x[..., n_rot:]
    if neox:
        x0, x1 = xr[..., :half], xr[..., half:]
        out = torch.cat([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)
    else:
        x0, x1 = xr[..., 0::2], xr[..., 1::2]
        out = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)
    return torch.cat([out, xp], dim=-1)


def fake_q8_0(x):
    """x rounded through Q8_0 as ggml quantizes activations: d = amax/127 (stored F16), q = round(x/d)."""
    b = x.reshape(*x.shape[:-1], -1, 32)
    d = b.abs().amax(-1, keepdim=True) / 127.0
    inv = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    q = torch.round(b * inv)  # ggml's AVX path rounds to nearest even
    return (q * d.half().float()).reshape(x.shape)


def f16(x):
    """x rounded to float16 and back."""
    return x.half().float()


class Linear(nn.Linear):
    """nn.Linear that can round its input to Q8_0 first (ggml numerics mode)."""

    ggml = False

    def forward(self, x):
        return super().forward(fake_q8_0(x) if self.ggml else x)


class Norm(nn.Module):
    """RMSNorm (llama) or LayerNorm with bias (stablelm, phi2), as ggml_rms_norm / ggml_norm."""

    def __init__(self, n, eps, rms):
        super().__init__()
        self.rms, self.eps = rms, eps
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = None if rms else nn.Parameter(torch.zeros(n))

    def forward(self, x):
        if self.rms:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        rms = c.arch == "llama"
        qkv_bias = c.arch in ("stablelm", "phi2")
        self.attn_norm = Norm(c.n_embd, c.norm_eps, rms)
        self.attn_q = Linear(c.n_embd, c.n_embd, bias=qkv_bias)
        self.attn_k = Linear(c.n_embd, c.n_embd, bias=qkv_bias)
        self.attn_v = Linear(c.n_embd, c.n_embd, bias=qkv_bias)
        self.attn_output = Linear(c.n_embd, c.n_embd, bias=c.arch == "phi2")
        if c.arch == "phi2":  # parallel block: the MLP reads attn_norm's output
            self.ffn_norm = None
            self.ffn_gate = None
        else:
            self.ffn_norm = Norm(c.n_embd, c.norm_eps, rms)
            self.ffn_gate = Linear(c.n_embd, c.n_ff, bias=False)
        mlp_bias = c.arch == "phi2"
        self.ffn_up = Linear(c.n_embd, c.n_ff, bias=mlp_bias)
        self.ffn_down = Linear(c.n_ff, c.n_embd, bias=mlp_bias)

    def attention(self, h, pos):
        c = self.c
        B, T, _ = h.shape
        q, k, v = (lin(h).view(B, T, c.n_head, c.head_dim).transpose(1, 2)
                   for lin in (self.attn_q, self.attn_k, self.attn_v))
        neox = c.arch != "llama"
        q = rope(q, pos, c.n_rot, c.rope_base, neox)
        k = rope(k, pos, c.n_rot, c.rope_base, neox)
        if self.attn_q.ggml:  # the F16 KV cache
            k, v = f16(k), f16(v)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(c.head_dim)
        mask = torch.ones(T, T, dtype=torch.bool, device=h.device).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, c.n_embd)
        return self.attn_output(y)

    def mlp(self, h):
        if self.ffn_gate is not None:  # SwiGLU
            return self.ffn_down(F.silu(self.ffn_gate(h)) * self.ffn_up(h))
        u = self.ffn_up(h)
        if self.ffn_up.ggml:  # ggml's F16 GELU table (|x| >= 10 passes through exactly)
            g = f16(F.gelu(f16(u), approximate="tanh"))
            g = torch.where(u <= -10, torch.zeros_like(u), torch.where(u >= 10, u, g))
            return self.ffn_down(g)
        return self.ffn_down(F.gelu(u, approximate="tanh"))

    def forward(self, x, pos):
        h = self.attn_norm(x)
        if self.ffn_norm is None:  # phi2: attention and MLP in parallel from one norm
            return x + self.attention(h, pos) + self.mlp(h)
        x = x + self.attention(h, pos)
        return x + self.mlp(self.ffn_norm(x))


class TinyLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.token_embd = nn.Embedding(c.n_vocab, c.n_embd)
        self.blk = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.output_norm = Norm(c.n_embd, c.norm_eps, c.arch == "llama")
        self.output = Linear(c.n_embd, c.n_vocab, bias=c.arch == "phi2")
        self.reset_parameters()

    def reset_parameters(self):
        """GPT-2 style init: N(0, 0.02), residual output projections scaled by 1/sqrt(2 L)."""
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if name.endswith(("attn_output.weight", "ffn_down.weight")):
                    std /= math.sqrt(2 * self.c.n_layer)
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids):
        """ids [B, T] (positions 0..T-1) → logits [B, T, n_vocab] in float32."""
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.token_embd(ids)
        for b in self.blk:
            x = b(x, pos)
        return self.output(self.output_norm(x))

    @property
    def ggml_numerics(self):
        return self.output.ggml

    @ggml_numerics.setter
    def ggml_numerics(self, on):
        for m in self.modules():
            if isinstance(m, Linear):
                m.ggml = on

    def n_params(self):
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------ GGUF mapping

    def gguf_tensors(self):
        """(GGUF name, float32 numpy array) for every parameter, in a stable order."""
        out = []
        for name, p in self.named_parameters():
            out.append((gguf_name(name), p.detach().to(torch.float32).cpu().numpy()))
        return out

    def load_gguf_weights(self, tensors):
        """Copies {GGUF name: array} (e.g. dequantized Q8_0 from a shipped file) into the model."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                a = tensors[gguf_name(name)]
                assert tuple(a.shape) == tuple(p.shape), (name, a.shape, p.shape)
                p.copy_(torch.from_numpy(a))


def gguf_name(param_name):
    """'blk.3.attn_q.weight' stays as is; PyTorch already uses dotted module paths."""
    return param_name


def config_from_gguf(meta):
    """Rebuilds a Config from a shipped file's metadata."""
    arch = meta["general.architecture"]
    g = lambda k: meta[f"{arch}.{k}"]
    eps_key = "attention.layer_norm_rms_epsilon" if arch == "llama" else "attention.layer_norm_epsilon"
    return Config(arch=arch, n_vocab=len(meta["tokenizer.ggml.tokens"]), n_ctx=g("context_length"),
                  n_embd=g("embedding_length"), n_layer=g("block_count"), n_head=g("attention.head_count"),
                  n_ff=g("feed_forward_length"), n_rot=g("rope.dimension_count"),
                  rope_base=g("rope.freq_base"), norm_eps=g(eps_key))
