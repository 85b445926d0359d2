#!/bin/sh
# cli_compare.sh — `herd compare` on three quantizations of the tiny ladder:
# the table (measured and predicted figures), --json, then the HTML report rendered by headless Chromium (Debian's
# chromium, installed by `make test-deps`): the rendered DOM has the
# table rows and the SVG chart elements, and the screenshot shows the charts
# (their colours are counted in its pixels).
#
# Without chromium the rendering part is skipped (the test exits 77 after the
# table and the report's static checks have run).
set -u
HERD=$1
case $HERD in /*) ;; *) HERD=$(pwd)/$HERD ;; esac
T=../shared/models/tiny
. tests/lib.sh
need_shared "$T/ladder-q4_0.gguf" "$T/ladder-q8_0.gguf" "$T/ladder-f16.gguf" ../shared/DESIGN.md
fail=0
bad() { echo "FAIL: $*"; fail=1; }

cat >"$TMP/task.jsonl" <<'EOF'
{"ctx": "The cat sat on the", "endings": ["mat.", "dog.", "moon.", "car."], "label": 0}
{"activity_label": "Baking", "ctx": "She puts the cake in the oven. [step] She", "endings": ["waits for it to bake.", "eats the oven.", "sings to a lamp.", "paints the sky."], "label": 0}
{"ctx": "He opened the door and", "endings": ["walked in.", "ate the door.", "flew away.", "became a door."], "label": 0}
EOF

# Small sizes: the test runs under ASan too.
"$HERD" compare "$T/ladder-q4_0.gguf" "$T/ladder-q8_0.gguf" "$T/ladder-f16.gguf" \
    --text ../shared/DESIGN.md -c 64 --chunks 2 -p 32 -n 8 -t 1 --task "$TMP/task.jsonl" \
    --html "$TMP/report.html" >"$TMP/table" 2>"$TMP/err" || { bad "herd compare failed"; cat "$TMP/err"; }
for q in q4_0 q8_0 f16; do
    grep -qi "^| ladder-$q.gguf *| llama *| *1.84M | $q " "$TMP/table" || bad "table row for $q"
done
grep -q "perplexity" "$TMP/table" && grep -q "acc_norm" "$TMP/table" || bad "table lacks quality columns"
[ "$(grep -c '^| ladder-.*apache-2.0' "$TMP/table")" -eq 3 ] || bad "general.license not shown"
[ "$(grep -c '[0-9]\.[0-9]* ± [0-9]' "$TMP/table")" -eq 3 ] || bad "a perplexity is missing"
# The predictions beside the measured figures: memory (at least the file),
# pp and tg tokens/s from the probe; and the note saying how speed was taken.
head -1 "$TMP/table" | grep -q "| *peak MiB | *pred MiB | *load ms | *pp t/s | *pp pred | *tg t/s | *tg pred |" ||
    bad "table lacks the predicted columns: $(head -1 "$TMP/table")"
[ "$(awk -F'|' '/^\| ladder-/ && $6+0 > 0 && $8+0 >= $6+0 && $11+0 > 0 && $13+0 > 0' "$TMP/table" | wc -l)" -eq 3 ] ||
    bad "a predicted figure is missing or not a number"
grep -q "^speed: .*runs interleaved across the models" "$TMP/table" || bad "the table does not say how speed was measured"
grep -q "^pred: herd's performance model" "$TMP/table" || bad "the table does not say what pred is"

# The report stands on its own: nothing it would fetch, no script.
[ -s "$TMP/report.html" ] || { bad "no report"; exit 1; }
if grep -Eiq '<script|<link|<img|<iframe|@import|url\(|src=|href=|https?:' "$TMP/report.html"; then
    bad "the report references something outside itself"
fi

# The report: the predicted cells (three a row) and, with --task, the accuracy
# chart: an acc and an acc_norm bar for each model, and the line of guessing.
[ "$(grep -o '<td class="pred">[0-9]' "$TMP/report.html" | wc -l)" -eq 9 ] || bad "report: predicted cells"
grep -q '<svg id="accuracy"' "$TMP/report.html" || bad "report: no accuracy chart with --task"
[ "$(grep -o '<rect class="acc"' "$TMP/report.html" | wc -l)" -eq 3 ] || bad "report: accuracy bars"
[ "$(grep -o '<rect class="acc-norm"' "$TMP/report.html" | wc -l)" -eq 3 ] || bad "report: acc_norm bars"
grep -q '<line class="chance"' "$TMP/report.html" || bad "report: no line of guessing"

# --json: the same figures for tools, predictions and task included.
"$HERD" compare "$T/ladder-q4_0.gguf" "$T/ladder-q8_0.gguf" -p 16 -n 4 -t 1 --task "$TMP/task.jsonl" \
    --json >"$TMP/c.json" 2>"$TMP/err" || { bad "herd compare --json failed"; cat "$TMP/err"; }
python3 - "$TMP/c.json" <<'EOF' || fail=1
import json, sys
doc = json.load(open(sys.argv[1]))
num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
ok = len(doc["models"]) == 2 and doc["speed"]["reps"] == 3 and doc["task"]["questions"] == 3
for m in doc["models"]:
    want = [m["pp"]["tokens_per_s"], m["pp"]["predicted"], m["tg"]["tokens_per_s"], m["tg"]["predicted"],
            m["memory"]["peak_bytes"], m["memory"]["predicted_bytes"], m["predicted_threads"]]
    if not all(num(v) for v in want) or m["memory"]["predicted_bytes"] < m["file_bytes"]:
        print("FAIL: --json: %s: a figure is missing: %s" % (m["model"], want)); ok = False
    if not (0 <= m["task"]["acc"] <= 1 and 0 <= m["task"]["acc_norm"] <= 1) or m["error"] is not None:
        print("FAIL: --json: %s: task or error: %s %s" % (m["model"], m["task"], m["error"])); ok = False
sys.exit(0 if ok else 1)
EOF

# A model that does not load: its row says why, the others are still measured.
# A file named like a catalog model gets the catalog's licence beside its own.
printf 'not a gguf' >"$TMP/broken.gguf"
ln -s "$(cd "$T" && pwd)/ladder-q4_0.gguf" "$TMP/mistral-7b-v0.1.Q4_0.gguf"
"$HERD" compare "$TMP/broken.gguf" "$TMP/mistral-7b-v0.1.Q4_0.gguf" -p 8 -n 4 -t 1 \
    --html "$TMP/r2.html" >"$TMP/t2" 2>/dev/null
[ $? -eq 1 ] || bad "a broken model did not make compare fail"
grep -q '<svg id="accuracy"' "$TMP/r2.html" && bad "report: an accuracy chart without --task"
grep -q "^broken.gguf: load:" "$TMP/t2" || bad "broken model row"
grep -q "^| mistral-7b-v0.1.Q4_0.gguf.*| apache-2.0 *| Apache-2.0 (mistral-7b)" "$TMP/t2" ||
    bad "catalog licence not matched: $(grep mistral "$TMP/t2")"

# ---- rendering in headless Chromium
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
    skip_part "chromium not installed (make test-deps installs it); report not rendered"
    finish $fail
fi
chrome() {
    timeout 180 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run \
        --user-data-dir="$(mktemp -d "$TMP/profile.XXXXXX")" "$@" "file://$TMP/report.html" 2>>"$TMP/chrome.err"
}
chrome --dump-dom >"$TMP/dom.html" || bad "chromium --dump-dom failed"
chrome --screenshot="$TMP/shot.png" --window-size=1200,1600 >/dev/null || bad "chromium --screenshot failed"

# The rendered DOM: three table rows, three points, three bars.
python3 - "$TMP/dom.html" <<'EOF' || fail=1
import re, sys
dom = open(sys.argv[1]).read()
def inside(tag_id):
    m = re.search(r'<svg[^>]*id="%s".*?</svg>' % tag_id, dom, re.S)
    return m.group(0) if m else ""
checks = {
    "table rows": len(re.findall(r'<tr class="model"', dom)),
    "scatter points": len(re.findall(r'<circle class="point"', inside("speed-quality"))),
    "memory bars": len(re.findall(r'<rect class="bar"', inside("memory"))),
    "predicted memory marks": len(re.findall(r'<line class="pred"', inside("memory"))),
    "accuracy bars": len(re.findall(r'<rect class="acc"', inside("accuracy"))),
}
ok = True
for what, n in checks.items():
    if n != 3:
        print("FAIL: rendered page has %d %s, want 3" % (n, what)); ok = False
for name in ("ladder-q4_0.gguf", "ladder-q8_0.gguf", "ladder-f16.gguf"):
    if 'data-model="%s"' % name not in dom:
        print("FAIL: rendered page has no row for", name); ok = False
sys.exit(0 if ok else 1)
EOF

# The screenshot: a 1200x1600 PNG in which the charts' colours appear (the
# points and bars of the first three models: blue, red, green).
python3 - "$TMP/shot.png" <<'EOF' || fail=1
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    print("FAIL: screenshot is not a PNG"); sys.exit(1)
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
if (w, h) != (1200, 1600) or depth != 8 or ctype not in (2, 6) or interlace:
    print("FAIL: unexpected screenshot format", w, h, depth, ctype, interlace); sys.exit(1)
bpp = 4 if ctype == 6 else 3
raw, stride = zlib.decompress(idat), w * bpp
prev, counts = bytearray(stride), {}
want = {(0x1f, 0x77, 0xb4): "blue", (0xd6, 0x27, 0x28): "red", (0x2c, 0xa0, 0x2c): "green"}
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        k = (line[x], line[x + 1], line[x + 2])
        if k in want: counts[want[k]] = counts.get(want[k], 0) + 1
    prev = line
ok = True
for colour in want.values():
    if counts.get(colour, 0) < 500:
        print("FAIL: the screenshot has %d %s pixels; the charts are not drawn" % (counts.get(colour, 0), colour)); ok = False
print("screenshot pixels:", counts)
sys.exit(0 if ok else 1)
EOF
finish $fail
