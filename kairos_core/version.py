"""The version of the kairos-gateway distribution."""

__version__ = "0.1.0"
