#!/usr/bin/env bash
# Users have only this repository, so the docs and every string the CLI and the library print must stand on
# their own: no citations of documents, sections or trackers that are not in it ("spec §4", "training-spec",
# "the original", "issue 5", "the kernels issue", "../shared/..."). Checks docs/, README.md, models/*/README.md
# and the string literals (a simple heuristic: each "..." on a line) of cli/ and src/. Comments are not checked.
# Prints every offending line and fails if there is one.
set -u
root="${1:-.}"
cd "$root" || exit 2

# Case-insensitive forms.
pattern='§|training-spec|\bspec ?§|\bspec/|\bshared/|\b(original|seed|ecosystem|embedding-prediction)\.md\b'
pattern+="|\\bthe original\\b|\\boriginal's\\b|\\(original\\)|\\boriginal (project|prototype|python|tritter|formula|estimate|design|spec)\\b"
pattern+="|\\bissue ?#?[0-9]|\\bthe ([a-z0-9-]+ )?issue('s)?\\b|\\bthe spec\\b|\\bspec's\\b|\\(spec\\)|\\bspec machine\\b|\\bspec-[0-9]"
pattern+="|\\bthe seed's\\b"
# Case-sensitive: the developers' design notes, which live outside the repository (docs/design.md is ours).
pattern_cs='\bDESIGN\.md\b'

bad=0
report() {  # stdin: "file:line:text" hits
  while IFS= read -r hit; do
    echo "docs_standalone: $hit"
    bad=1
  done
}

docs=()
[ -d docs ] && while IFS= read -r f; do docs+=("$f"); done < <(find docs -name '*.md' | sort)
[ -f README.md ] && docs+=(README.md)
for f in models/*/README.md; do [ -f "$f" ] && docs+=("$f"); done
if [ ${#docs[@]} -gt 0 ]; then
  report < <({ grep -nHiE "$pattern" "${docs[@]}"; grep -nHE "$pattern_cs" "${docs[@]}"; } | sort -t: -k1,1 -k2,2n -u)
fi

# String literals of cli/ and src/: "file:line:<tab>literal", then the patterns on the literal only.
code_dirs=()
for d in cli src; do [ -d "$d" ] && code_dirs+=("$d"); done
if [ ${#code_dirs[@]} -gt 0 ]; then
  literals=$(grep -rnoHE '"([^"\\]|\\.)*"' "${code_dirs[@]}" --include='*.cpp' --include='*.h' --include='*.cc' \
               --include='*.hpp' --include='*.cu' --include='*.cuh' | sed -E 's/^([^:]+:[0-9]+):/\1:\t/' || true)
  report < <({ grep -iE $'\t'".*($pattern)" <<<"$literals"; grep -E $'\t'".*($pattern_cs)" <<<"$literals"; } |
             sort -t: -k1,1 -k2,2n -u)
fi

if [ $bad -eq 0 ]; then echo "docs_standalone: ok"; fi
exit $bad
