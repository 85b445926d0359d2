#!/bin/sh
# cli_grammar_run.sh — `herd run` with --grammar, --grammar-file and
# --json-schema: outputs that follow the grammar, and one clear error line with
# a non-zero exit for bad input.
set -u
HERD=$1
M=models/kjv-llama-q8_0.gguf
[ -f "$M" ] || { echo "skip: $M missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
run() { "$HERD" run -m "$M" -p "And God said" --no-display-prompt "$@" 2>"$tmp/err"; }

for seed in 1 2 3 4; do
  out=$(run -n 12 --seed $seed --grammar 'root ::= ("yes" | "no") "!"')
  case "$out" in yes! | no!) ;; *) bad "grammar output '$out'" ;; esac
done
printf 'root ::= [0-9]{3} "-" [a-z]+\n' >"$tmp/g.gbnf"
out=$(run -n 10 --temp 0 --grammar-file "$tmp/g.gbnf")
echo "$out" | grep -Eq '^[0-9]{3}-[a-z]+$' || bad "grammar-file output '$out'"
out=$(run -n 40 --seed 5 -j '{"type":"object","properties":{"n":{"type":"integer","minimum":1,"maximum":9}},"required":["n"],"additionalProperties":false}')
echo "$out" | grep -Eq '^\{ ?"n" ?: ?[1-9] ?\}$' || bad "json-schema output '$out'"

expect_error() { # code, pattern, args...
  code=$1 pat=$2; shift 2
  run -n 4 "$@" >/dev/null
  rc=$?
  [ $rc -eq "$code" ] || bad "$* exited $rc, want $code"
  grep -q "$pat" "$tmp/err" || { bad "$*: no '$pat' in:"; cat "$tmp/err"; }
}
expect_error 1 'line 1, column 10: unterminated string literal' --grammar 'root ::= "a'
expect_error 1 "undefined rule 'x'" --grammar 'root ::= x'
expect_error 1 'allOf is not supported' -j '{"allOf":[]}'
expect_error 1 'not JSON' -j '{"type":'
expect_error 1 'cannot read' --grammar-file "$tmp/missing.gbnf"
expect_error 2 'give one of' --grammar 'root ::= "a"' -j '{}'
expect_error 2 'do not apply to --chat' --chat --grammar 'root ::= "a"'
exit $fail
