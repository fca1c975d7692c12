"""pytest for Cognitia's tests shipped by the kit, on the applied checkout (see cognitia_stubs)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, os.environ["COGNITIA_CHECK_DIR"])

from cognitia_stubs import install

install(Path(__file__).resolve().parent)
