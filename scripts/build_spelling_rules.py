"""Write pricing_service/seed/spelling_rules.json.gz from the installed genai-prices.

Run after upgrading genai-prices (tests/unit/test_spelling.py fails until it is run):
    .venv/bin/python scripts/build_spelling_rules.py
"""

from __future__ import annotations

import gzip
import json

from pricing_service.spelling import RULES_FILE, export_rules


def main() -> None:
    text = json.dumps(export_rules(), separators=(",", ":"), sort_keys=True)
    RULES_FILE.write_bytes(gzip.compress(text.encode(), mtime=0))
    print(f"wrote {RULES_FILE} ({RULES_FILE.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
