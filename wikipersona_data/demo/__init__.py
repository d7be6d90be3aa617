"""The bundled, fictional demo dump (multistream + index) and the script that builds it."""
