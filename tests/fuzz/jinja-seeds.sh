#!/bin/sh
# jinja-seeds.sh — (re)make tests/fuzz/corpus/jinja, the seeds of fuzz_jinja:
# every template of ../shared/chat/templates, a NUL byte, then the largest of
# its cases in ../shared/chat/cases.jsonl (without the expected rendering).
# Run from the project root; needs python3.
set -e
out=tests/fuzz/corpus/jinja
mkdir -p "$out"
python3 - ../shared/chat "$out" <<'PY'
import json, os, sys
shared, out = sys.argv[1], sys.argv[2]
best = {}
for line in open(os.path.join(shared, "cases.jsonl"), encoding="utf-8"):
    c = json.loads(line)
    if len(line) > len(best.get(c["template"], ("", ""))[1]):
        best[c["template"]] = (c, line)
for name in sorted(os.listdir(os.path.join(shared, "templates"))):
    src = open(os.path.join(shared, "templates", name), "rb").read()
    req = {}
    if name in best:
        c = best[name][0]
        req = {k: c[k] for k in ("messages", "extra", "bos_token", "eos_token",
                                 "add_generation_prompt") if k in c}
    with open(os.path.join(out, name.replace(".jinja", "")), "wb") as f:
        f.write(src + b"\0" + json.dumps(req, ensure_ascii=False).encode())
PY
