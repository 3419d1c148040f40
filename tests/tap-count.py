#!/usr/bin/env python3
"""Counts the TAP test points ("ok" / "not ok" lines) of meson test logs and prints one closing line:
"N passed, N failed, N skipped". Usage: tap-count.py BUILD_DIR/meson-logs/testlog.json [...]
A meson test without TAP output (the fuzz corpus replays) counts as one point, by its result."""
import json
import re
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    for line in open(path):
        t = json.loads(line)
        taps = [l for l in (t.get("stdout") or "").splitlines() if re.match(r"(not )?ok\b", l)]
        if not taps:
            if t.get("result") == "OK":
                passed += 1
            elif t.get("result") == "SKIP":
                skipped += 1
            else:
                failed += 1
            continue
        for tap in taps:
            if tap.startswith("not ok"):
                failed += 1
            elif re.search(r"#\s*skip", tap, re.I):
                skipped += 1
            else:
                passed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
