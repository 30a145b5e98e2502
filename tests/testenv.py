"""Loaded with ``-p`` before Django's settings are read: the suite runs with PASSLINE_ENV=test."""

import os

os.environ.setdefault("PASSLINE_ENV", "test")
os.environ.setdefault("LOG_FORMAT", "text")
