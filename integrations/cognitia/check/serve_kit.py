"""Cognitia's backend as far as the selector needs it: the applied checkout's
``routers/pricing.py`` (the kit's router) mounted at /api/v1/pricing, as main.py mounts it,
in front of the pricing service at PRICING_SERVICE_URL.

python serve_kit.py BACKEND_DIR PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cognitia_stubs import install

install(Path(sys.argv[1]).resolve())

from open_webui.routers import pricing  # noqa: E402

app = FastAPI()
app.include_router(pricing.router, prefix="/api/v1/pricing", tags=["pricing"])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
