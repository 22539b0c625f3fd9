#!/usr/bin/env bash
# Build switch/_esl_split (switch/codec.py's optional C accelerator, issue 15 item 8) for the given Python.
# Without a C compiler or that Python's headers: one line, and the product runs the pure-Python codec.
# A compile error fails setup: the source is ours and must build wherever the tools are.
set -euo pipefail
python=${1:-.venv/bin/python}
cc=${CC:-gcc}
src=switch/_esl_split.c
read -r include suffix < <("$python" -c 'import sysconfig as s; print(s.get_paths()["include"], s.get_config_var("EXT_SUFFIX"))')
out=switch/_esl_split$suffix
[ "$out" -nt "$src" ] && exit 0
if ! command -v "$cc" >/dev/null 2>&1 || [ ! -f "$include/Python.h" ]; then
  echo "setup: no $cc or no $include/Python.h: the ESL codec runs in pure Python (install gcc and the Python headers for its C accelerator)"
  exit 0
fi
$cc -O2 -fPIC -shared -Wall -fno-strict-aliasing -I"$include" -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
echo "setup: built $out (the ESL codec's C accelerator)"
