"""How much of the official API reference the tests check: source keys cited by tests, per key.

The reference (shared/reference/qianfan-official-api.md) gives every fact a source key such as [B4]; a test
that checks a fact cites its key in its name, docstring or comments. This prints, per key of the reference's
Sources table, the test files that cite it, and the share of keys cited. Run from the repository root:

    python scripts/reference_coverage.py [--reference PATH] [--show-missing]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = REPO.parent / "shared" / "reference" / "qianfan-official-api.md"
SOURCE_ROW = re.compile(r"^\| ([A-Z]\d+) \|", re.MULTILINE)
CITED = re.compile(r"\[([A-Z]\d+)\]|def test_([a-z]\d+)_")


def keys_of(reference: Path) -> list[str]:
    text = reference.read_text(encoding="utf-8")
    sources = text[text.index("## Sources") :]
    return SOURCE_ROW.findall(sources)


def citations(tests: Path) -> dict[str, set[str]]:
    cited: dict[str, set[str]] = defaultdict(set)
    for path in sorted(tests.rglob("*.py")):
        for bracketed, named in CITED.findall(path.read_text(encoding="utf-8")):
            cited[(bracketed or named).upper()].add(str(path.relative_to(REPO)))
    return cited


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--show-missing", action="store_true", help="list the keys no test cites")
    args = parser.parse_args(argv)
    if not args.reference.is_file():
        print(f"error: the reference {args.reference} does not exist", file=sys.stderr)
        return 2
    keys = keys_of(args.reference)
    cited = citations(REPO / "tests")
    covered = [key for key in keys if key in cited]
    for key in keys:
        files = sorted(cited.get(key, ()))
        print(f"{key:4} {len(files):2} {', '.join(files) if files else '-'}")
    print(f"{len(covered)} of {len(keys)} source keys are cited by tests ({len(covered) / len(keys):.0%}).")
    if args.show_missing:
        print("not cited:", " ".join(key for key in keys if key not in cited))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
