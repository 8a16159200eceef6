"""Errors raised by camel: one base class, one-line subclasses, each with a one-line message."""

from __future__ import annotations


class CamelError(Exception):
    """Base class of every failure camel reports to its callers."""


class ConfigError(CamelError):
    """A CamelConfig or TrainingArgs field has an invalid value."""


class BaseModelError(CamelError):
    """A base-model folder is missing, unreadable or not a supported encoder."""


class AdapterLoadError(CamelError):
    """An adapter folder is missing, corrupt, or does not match the base model."""


class OtherBaseError(AdapterLoadError):
    """A whole, valid adapter trained on another base model than the one it was asked to load on.

    Not a broken adapter: after a base change it keeps serving on its own base (or a round on the
    new base replaces it), so it must never be marked rejected."""


class AdapterSaveError(CamelError):
    """An adapter could not be written to its folder."""


class IncompatibleAdapterError(CamelError):
    """An adapter was built on a different base model than the one it is used with."""


class TrainingDataError(CamelError):
    """Texts and labels given to train or evaluate are unusable."""


class DataFileError(CamelError):
    """A labelled CSV file is missing, undecodable or malformed."""


class CacheError(CamelError):
    """A feature-cache shard could not be read or written."""
