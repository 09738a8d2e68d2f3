"""One module per file format, each turning bytes into an ``ExtractedDocument``."""
