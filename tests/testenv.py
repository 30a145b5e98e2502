"""Loaded with ``-p`` before Django's settings are read: the suite runs with PASSLINE_ENV=test."""

import os

os.environ.setdefault("PASSLINE_ENV", "test")
os.environ.setdefault("LOG_FORMAT", "text")

# Photos a test run uploads (and the demo data draws) go to a directory of the run's own, which
# the browser tests' daphne inherits, never into the checkout's var/media.
if "MEDIA_ROOT" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="passline-test-media-")
    atexit.register(shutil.rmtree, os.environ["MEDIA_ROOT"], ignore_errors=True)
