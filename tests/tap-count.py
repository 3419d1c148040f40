#!/usr/bin/env python3
"""Counts the TAP test points ("ok" / "not ok" lines) of meson test logs and prints one closing line:
"N passed, N failed, N skipped". Usage: tap-count.py BUILD_DIR/meson-logs/testlog.json [...] [TAP_OUTPUT.log]...
A meson test without TAP output (the fuzz corpus replays) counts as one point, by its result. A file whose name
does not end in .json is read as TAP text (tests/package/run.sh's output). A file that is missing counts as one
failed point: a run that left no log did not pass."""
import json
import re
import sys

passed = failed = skipped = 0
def count(lines):
    global passed, failed, skipped
    for tap in lines:
        if tap.startswith("not ok"):
            failed += 1
        elif re.search(r"#\s*skip", tap, re.I):
            skipped += 1
        else:
            passed += 1


for path in sys.argv[1:]:
    try:
        f = open(path)
    except OSError as e:
        print("tap-count: %s" % e, file=sys.stderr)
        failed += 1
        continue
    if not path.endswith(".json"):
        count(l for l in f if re.match(r"(not )?ok\b", l))
        continue
    for line in f:
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
        count(taps)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
