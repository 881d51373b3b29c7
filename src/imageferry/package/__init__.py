"""Offline packages (format v1): tar data files of content-addressed blobs plus a meta file.

See docs/package-format.md. The writer is a blob sink, the reader a blob
source, so save and load run on the same engine as copy.
"""
