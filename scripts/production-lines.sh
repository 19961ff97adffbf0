#!/usr/bin/env bash
# Counts the production lines of src/ at each given revision (default HEAD): non-blank,
# non-comment lines as tokei counts them, leaving out test modules (`tests.rs` files and
# inline `#[cfg(test)] mod … { … }` blocks, which this project keeps at the end of a file).
# Usage: scripts/production-lines.sh [REV…]   Needs tokei (`cargo install tokei`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v tokei > /dev/null || { echo "production-lines.sh: tokei not found (cargo install tokei)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for rev in "${@:-HEAD}"; do
    tree="$work/$rev"
    mkdir -p "$tree"
    git archive "$rev" src | tar -x -C "$tree"
    find "$tree" -name tests.rs -delete
    while IFS= read -r -d '' file; do
        # From a `#[cfg(test)]` line whose next line opens a module, to the end of the file.
        awk '/^#\[cfg\(test\)\]$/ { held = $0; next }
             held != "" { if ($0 ~ /^mod [a-z_]+ \{$/) exit; print held; held = "" }
             { print }
             END { if (held != "") print held }' "$file" > "$file.kept"
        mv "$file.kept" "$file"
    done < <(find "$tree" -name '*.rs' -print0)
    code=$(tokei --types Rust "$tree/src" | awk '$1 == "Rust" { print $4 }')
    printf '%s\t%s production lines in src/\n' "$(git rev-parse --short "$rev")" "$code"
done
