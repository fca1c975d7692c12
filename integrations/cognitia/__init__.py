"""Cognitia (Open WebUI fork): pricing.py replaces backend/open_webui/routers/pricing.py."""
