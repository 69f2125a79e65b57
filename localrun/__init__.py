"""Running the app and Chromium on this machine, loopback only: shared by tests/e2e, bench and demo."""
