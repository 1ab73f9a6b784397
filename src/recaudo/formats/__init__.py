"""Pure bytes <-> records codecs. No database, no services: files in, rows out, and back."""
