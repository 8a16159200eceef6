"""Version of the camel library, recorded in every adapter folder."""

__version__ = "0.1.0"
