"""Build the bundled seed snapshot from the recorded 2026-04-29 PricePerToken answers.

Usage: python scripts/build_seed.py   (writes pricing_service/seed/pricepertoken-2026-04-29.json.gz)
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "tests" / "fixtures" / "pricepertoken" / "2026-04-29"
TARGET = ROOT / "pricing_service" / "seed" / "pricepertoken-2026-04-29.json.gz"
RECORDED_AT = "2026-04-29T08:14:00Z"


def main() -> None:
    rows = json.loads((RECORDING / "get_all_models.json").read_text())
    details = {d["slug"]: d for d in json.loads((RECORDING / "get_model.json").read_text())}
    payload = {"recorded_at": RECORDED_AT, "rows": rows, "details": details}
    data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    # mtime=0 keeps the file byte-identical across rebuilds.
    TARGET.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"{TARGET.relative_to(ROOT)}: {len(rows)} rows, {len(details)} details")


if __name__ == "__main__":
    main()
