"""Write pricing_service/seed/usage_extractors.json.gz from the installed genai-prices.

Run after upgrading genai-prices (tests/unit/test_usage.py fails until it is run):
    .venv/bin/python scripts/build_usage_extractors.py
"""

from __future__ import annotations

import gzip
import json

from pricing_service.usage import EXTRACTORS_FILE, export_extractors


def main() -> None:
    text = json.dumps(export_extractors(), separators=(",", ":"), sort_keys=True)
    EXTRACTORS_FILE.write_bytes(gzip.compress(text.encode(), mtime=0))
    print(f"wrote {EXTRACTORS_FILE} ({EXTRACTORS_FILE.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
