#!/usr/bin/env python3
"""Counts test results over meson test logs and prints "N passed, N failed".

usage: summary.py TESTLOG.json...

Each TAP assertion counts once ("ok" passed, "not ok" failed, "# SKIP"
skipped). Each failed assertion is repeated just above that line, with its
diagnostics, so that the tail of a long run's output says what failed. A
test that meson judged failed although all its assertions passed
(a crash after the last one, a sanitizer report, a timeout) counts as one
more failure, as does a missing log: a run that did not happen is not green.
Exits 1 if anything failed.
"""
import json
import re
import sys

TAP = re.compile(r"^(not ok|ok)\b(.*)$")
DIAGNOSTIC_LINES = 8  # of a failed assertion's "# ..." lines, repeated at the end
failures = []


def count(path):
    passed = failed = skipped = 0
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError as e:
        print("summary: no test log %s (%s)" % (path, e.strerror), file=sys.stderr)
        return 0, 1, 0
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        good = t.get("result") in ("OK", "EXPECTEDFAIL")
        p = f = s = 0
        out_lines = (t.get("stdout") or "").splitlines()
        for i, out in enumerate(out_lines):
            m = TAP.match(out)
            if not m:
                continue
            if re.search(r"#\s*SKIP", m.group(2), re.I):
                s += 1
            elif m.group(1) == "ok":
                p += 1
            else:
                f += 1
                notes = []
                for extra in out_lines[i + 1:i + 1 + DIAGNOSTIC_LINES]:
                    if not extra.startswith("#"):
                        break
                    notes.append(extra[:400])
                failures.append("%s: %s\n%s" % (t.get("name"), out[:400], "\n".join(notes)))
        if t.get("result") == "SKIP" and not (p or f):
            s = max(s, 1)
        elif not good and f == 0:
            f = 1
            print("summary: %s: %s" % (t.get("name"), t.get("result")), file=sys.stderr)
        elif good and not (p or f or s):
            p = 1
        passed, failed, skipped = passed + p, failed + f, skipped + s
    return passed, failed, skipped


def main():
    passed = failed = skipped = 0
    for path in sys.argv[1:]:
        p, f, s = count(path)
        passed, failed, skipped = passed + p, failed + f, skipped + s
    for f in failures:
        print("failed in " + f.rstrip("\n"))
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
