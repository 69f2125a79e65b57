"""The Playwright-driven demo: `scripts/demo` (see demo/run.py)."""
