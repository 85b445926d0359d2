"""Builds the King James Bible corpus and its SentencePiece tokenizer.

`bible -f "Gen1:1-Rev22:21"` (Debian's bible-kjv) prints one verse a line as
"Ge1:1 In the beginning God created the heaven and the earth.". The reference is
stripped; the verses of a chapter are joined with single spaces into one line (so every
word, verse-initial ones included, is "▁word" as in a prompt such as "And God said").

Whole books are held out for evaluation (HELDOUT: narrative, wisdom, prophecy, gospel and
epistle, ~3.7% of the verses); the rest is the training text.

Outputs in OUT (default build/): train.txt, heldout.txt (one chapter a line),
train_verses.txt (one verse a line, the tokenizer's input), kjv.model / kjv.vocab
(SentencePiece BPE, byte fallback, identity normalization), train.ids / heldout.ids
(uint16 token ids of each whole text, BOS first, as llama.cpp tokenizes the file).
"""

import argparse
import os
import re
import subprocess

import numpy as np
import sentencepiece as spm

HELDOUT = ("Ruth", "Eccl", "Jonah", "Mark", "Jas")
VOCAB_SIZE = 2000
REF = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")


def read_bible():
    """Returns [(book, chapter, verse text)] in canonical order."""
    text = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True,
                          capture_output=True, text=True).stdout
    verses = []
    for line in text.splitlines():
        m = REF.match(line)
        if not m:
            raise SystemExit(f"unexpected line from bible: {line!r}")
        verses.append((m.group(1), int(m.group(2)), m.group(4).strip()))
    return verses


def chapters(verses):
    """Joins the verses of each chapter with spaces: one line per chapter."""
    lines, key, cur = [], None, []
    for book, ch, text in verses:
        if (book, ch) != key and cur:
            lines.append(" ".join(cur))
            cur = []
        key = (book, ch)
        cur.append(text)
    if cur:
        lines.append(" ".join(cur))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="build")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    path = lambda name: os.path.join(args.out, name)

    verses = read_bible()
    books = {b for b, _, _ in verses}
    assert all(b in books for b in HELDOUT), "held-out book name not found"
    train = [v for v in verses if v[0] not in HELDOUT]
    held = [v for v in verses if v[0] in HELDOUT]
    print(f"verses: {len(verses)} total, {len(train)} train, {len(held)} held out ({', '.join(HELDOUT)})")
    for name, vs in (("train.txt", train), ("heldout.txt", held)):
        with open(path(name), "w") as f:
            f.write("\n".join(chapters(vs)) + "\n")
    with open(path("train_verses.txt"), "w") as f:
        f.write("".join(t + "\n" for _, _, t in train))

    # BPE (not unigram): llama.cpp's SPM tokenizer merges by score, which reproduces
    # SentencePiece's BPE encoding exactly. Identity normalization and kept whitespace,
    # or the ids differ from what a GGUF SPM tokenizer produces.
    spm.SentencePieceTrainer.train(
        input=path("train_verses.txt"), model_prefix=path("kjv"), model_type="bpe",
        vocab_size=VOCAB_SIZE, byte_fallback=True, character_coverage=1.0,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=2, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=path("kjv.model"))
    for name in ("train", "heldout"):
        text = open(path(name + ".txt")).read()
        ids = np.array([sp.bos_id()] + sp.encode(text), dtype=np.uint16)
        ids.tofile(path(name + ".ids"))
        print(f"{name}: {len(text)} chars, {len(ids)} tokens ({len(text) / len(ids):.2f} chars/token)")


if __name__ == "__main__":
    main()
