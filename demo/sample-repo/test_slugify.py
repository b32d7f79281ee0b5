"""Checks slugify; run with `python3 test_slugify.py`."""
from slugify import slugify

CASES = {
    "Hello World": "hello-world",
    "  Leading and trailing  ": "leading-and-trailing",
    "Rock & Roll": "rock-roll",
    "Version 2.0 -- final": "version-2-0-final",
}

failures = 0
for title, expected in CASES.items():
    got = slugify(title)
    if got != expected:
        failures += 1
        print(f"FAIL slugify({title!r}) = {got!r}, expected {expected!r}")
print(f"{len(CASES) - failures} of {len(CASES)} checks pass")
raise SystemExit(1 if failures else 0)
