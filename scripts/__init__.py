"""Command-line scripts of the project (setup, supervision, audits); runnable as files or importable."""
