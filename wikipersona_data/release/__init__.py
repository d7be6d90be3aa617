"""The release folder: parquet export, card and manifest, verify, publish, extend."""
