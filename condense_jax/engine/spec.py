"""What every sweep spec shares: construction from a TOML table checked against the fields' annotations,
a plain dict for manifests and the hash of the numbers. No JAX here: validating a spec must be instant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing

from ..errors import ConfigError


def _conforms(value, tp) -> bool:
    """Whether a TOML value fits a field annotation (float takes an int; int and float never a bool)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp in (str, bool):
        return isinstance(value, tp)
    if tp is type(None):
        return value is None
    if origin in (types.UnionType, typing.Union):
        return any(_conforms(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(v, args[0]) for v in value)
        return len(value) == len(args) and all(_conforms(v, a) for v, a in zip(value, args))
    return True


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            plural = {float: "numbers", int: "integers", str: "strings", bool: "booleans"}
            return f"a list of {plural.get(args[0]) or _describe(args[0])}"
        return f"a list of {len(args)} ({', '.join(_describe(a) for a in args)})"
    return {float: "a number", int: "an integer", str: "a string", bool: "true or false"}.get(tp, str(tp))


class SweepSpec:
    """What every sweep spec shares: a plain dict (for manifests) and the hash of its numbers."""

    KIND = ""
    LIST_KEYS: tuple[str, ...] = ()  # keys a TOML table may give as one value instead of a list
    ALSO = {"seeds": int}  # keys that also take a value of another type (seeds: a count)

    @classmethod
    def from_mapping(cls, d: dict, where: str):
        """Build the spec from a TOML table, rejecting unknown keys and values of the wrong type
        (checked against the fields' annotations) with a clear message."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
        # a single value for a list key is a one-element list; None (to_dict of an unset optional
        # list, e.g. on the job array's round trip) stays None
        d = {k: [v] if k in cls.LIST_KEYS and v is not None and not isinstance(v, list) else v for k, v in d.items()}
        hints = typing.get_type_hints(cls)
        for key, value in d.items():
            tp = hints[key]
            if not (_conforms(value, tp) or (key in cls.ALSO and _conforms(value, cls.ALSO[key]))):
                raise ConfigError(f"{where}: {key} must be {_describe(tp)}, got {value!r}")
        return cls(**d)

    def to_dict(self) -> dict:
        return {"kind": self.KIND, **{f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}}

    def config_hash(self, extra: dict | None = None) -> str:
        """Hash of everything that changes the numbers (not the name or the chunking)."""
        d = self.inert(self.to_dict())
        d.pop("name")
        d.pop("chunk_size")
        d.update(extra or {})
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


    def inert(self, d: dict) -> dict:
        """The configuration without settings that are switched off and so change no number: a
        sweep written before such a setting existed keeps its hash (and its --resume)."""
        return d


def _plain(v):
    return [_plain(x) for x in v] if isinstance(v, tuple) else v
