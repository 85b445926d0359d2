"""Writes the expected continuations into ../../tests/cli_models.sh from build/*.eval.json.

Each `check_model FILE N "TEXT"` line gets llama.cpp's text (prompt + N generated tokens)
as eval.py recorded it; herd must have produced the same 32 tokens (greedy_equal).
"""

import json
import re
import sys

TEST = "../../tests/cli_models.sh"


def main():
    s = open(TEST).read()
    for arch in ("llama", "stablelm", "phi2"):
        r = json.load(open(f"build/kjv-{arch}-q8_0.eval.json"))
        if not r.get("greedy_equal"):
            sys.exit(f"{arch}: herd's greedy continuation differs from llama.cpp's")
        text = r["test_text"]
        if re.search(r'["$`\\]', text):
            sys.exit(f"{arch}: the text needs shell quoting: {text!r}")
        line = f'check_model kjv-{arch}-q8_0.gguf {r["test_n"]} "{text}"'
        s, n = re.subn(rf"^check_model kjv-{arch}-q8_0\.gguf .*$", lambda _: line, s, flags=re.M)
        if n != 1:
            sys.exit(f"{arch}: no check_model line in {TEST}")
    open(TEST, "w").write(s)


if __name__ == "__main__":
    main()
