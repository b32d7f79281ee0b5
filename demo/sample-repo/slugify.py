"""Turns titles into URL slugs: lower case, ASCII letters and digits, single dashes."""
import re
import sys


def slugify(title: str) -> str:
    slug = title.lower()
    slug = re.sub(r"[^a-z0-9]", "-", slug)
    return slug


if __name__ == "__main__":
    print(slugify(" ".join(sys.argv[1:])))
