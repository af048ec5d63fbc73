#!/usr/bin/env bash
# Rebuilds crates/numbers/data/carriers.txt.gz: libphonenumber's English
# carrier prefix files (`prefix|Carrier`), as shipped inside the
# `phonenumber` crate this workspace depends on (Apache-2.0, The
# Libphonenumber Authors). Run from the project root.
set -euo pipefail
manifest=$(cargo metadata --format-version 1 | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(next(p["manifest_path"] for p in m["packages"] if p["name"] == "phonenumber"))')
dir=$(dirname "$manifest")/assets/carrier/en
cat "$dir"/*.txt | grep -v '^#' | grep '|' | LC_ALL=C sort -u | gzip -9n > crates/numbers/data/carriers.txt.gz
echo "wrote crates/numbers/data/carriers.txt.gz from $dir ($(zcat crates/numbers/data/carriers.txt.gz | wc -l) prefixes)"
