"""wikipersona-data: build, verify, version and publish the WikiPersona dataset."""

__version__ = "0.1.0"
