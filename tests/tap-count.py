#!/usr/bin/env python3
"""Counts the TAP test points ("ok" / "not ok" lines) of meson test logs and prints one closing line:
"N passed, N failed, N skipped". Before it, each failed point has a line naming its test ("FAILED suite / test (log):
not ok N - ...") and up to 12 of the diagnostic ("#") lines that follow it: CI's log may be cut, its last lines are not.
Usage: tap-count.py BUILD_DIR/meson-logs/testlog.json [...] [TAP_OUTPUT.log]...
A meson test without TAP output (the fuzz corpus replays) counts as one point, by its result. A file whose name
does not end in .json is read as TAP text (tests/package/run.sh's output). A file that is missing counts as one
failed point: a run that left no log did not pass."""
import json
import re
import sys

POINT = re.compile(r"(not )?ok\b")
passed = failed = skipped = 0
failures = []


def count(lines, name):
    """Counts the points of TAP text (a list of lines); returns how many there were."""
    global passed, failed, skipped
    points = 0
    why = 0  # diagnostic lines still to keep after a failed point
    for line in lines:
        line = line.rstrip("\n")
        if why and line.startswith("#"):
            failures.append("    " + line)
            why -= 1
            continue
        why = 0
        if not POINT.match(line):
            continue
        points += 1
        if line.startswith("not ok"):
            failed += 1
            failures.append(f"FAILED {name}: {line.strip()}")
            why = 12
        elif re.search(r"#\s*skip", line, re.I):
            skipped += 1
        else:
            passed += 1
    return points


for path in sys.argv[1:]:
    try:
        f = open(path)
    except OSError as e:
        print("tap-count: %s" % e, file=sys.stderr)
        failed += 1
        failures.append(f"FAILED {path}: no log")
        continue
    if not path.endswith(".json"):
        count(f.readlines(), path)
        continue
    for line in f:
        t = json.loads(line)
        if count((t.get("stdout") or "").splitlines(), f"{t.get('name')} ({path})"):
            continue
        if t.get("result") == "OK":
            passed += 1
        elif t.get("result") == "SKIP":
            skipped += 1
        else:
            failed += 1
            failures.append(f"FAILED {t.get('name')} ({path}): {t.get('result')}")
for line in failures:
    print(line)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
