"""Compare the lock with what ``make test-latest`` installed: which packages have newer releases.

Usage: python scripts/lock_drift.py requirements/lock.txt .venv-latest/versions.txt
Prints one line per package whose installed version differs from the locked one (torch aside, which
the Makefile installs from its own pin), then a summary; exit status 0 either way — drift is news, and
the test run that follows says whether it matters.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")


def pins(path: str) -> dict[str, str]:
    """``name: version`` for every ``name==version`` line (names normalised as pip does)."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        m = PIN.match(line.strip())
        if m:
            out[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return out


def main(lock: str, installed: str) -> int:
    locked, latest = pins(lock), pins(installed)
    for name in ("torch", "pip", "wheel"):  # installed by hand or by venv, not from the lock
        latest.pop(name, None)
    rows = [(n, locked.get(n, "-"), v) for n, v in sorted(latest.items()) if locked.get(n) != v]
    rows += [(n, v, "-") for n, v in sorted(locked.items()) if n not in latest]
    for name, old, new in rows:
        print(f"  {name}: locked {old}, newest {new}")
    print(f"lock drift: {len(rows)} package(s) differ from {lock}" if rows else f"lock drift: none ({lock})")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
