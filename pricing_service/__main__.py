"""python -m pricing_service."""

from __future__ import annotations

import sys

from pricing_service.cli import main

sys.exit(main())
