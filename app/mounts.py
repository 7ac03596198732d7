# -*- test-case-name: tests.app.test_cli -*-
"""``--mount PREFIX=module:attr``: parse the spec, import the object, tell what kind it is.

An object is mounted according to its type: a Twisted ``IResource`` goes into the tree as is,
an ASGI 3 application (an ``async`` callable taking ``scope, receive, send``) through
``bridge.ASGIResource``, a WSGI application (a plain callable taking ``environ,
start_response``) through Twisted's ``WSGIResource`` on the reactor's thread pool. Anything else
is refused at startup with a message naming the object, never at the first request. ``Kind`` and
``detect`` are the place to teach it another kind.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.web.resource import IResource


class MountError(Exception):
    """A ``--mount`` that cannot be served; the message says which one and why."""


@dataclass(frozen=True)
class MountSpec:
    """A parsed ``PREFIX=module:attr``."""

    prefix: str
    module: str
    attr: str

    @classmethod
    def parse(cls, text: str) -> MountSpec:
        """Parse ``PREFIX=module:attr``; raises ``ValueError`` naming what is wrong."""
        prefix, equals, target = text.partition("=")
        module, colon, attr = target.partition(":")
        if not equals or not colon or not module or not attr:
            raise ValueError(f"{text!r} is not PREFIX=module:attr")
        if not prefix.startswith("/") or "//" in prefix:
            raise ValueError(f"prefix {prefix!r} must be a path starting with /, like /app")
        return cls(prefix, module, attr)

    @property
    def segments(self) -> list[bytes]:
        """The prefix as resource-tree path segments; empty for ``/`` (the root)."""
        return [s.encode() for s in self.prefix.strip("/").split("/") if s]

    def __str__(self) -> str:
        return f"{self.prefix}={self.module}:{self.attr}"


class Kind(enum.Enum):
    """What a mounted object is, which decides how it is served."""

    RESOURCE = "Twisted IResource"
    ASGI = "ASGI 3 application"
    WSGI = "WSGI application"


@dataclass(frozen=True)
class Mount:
    """A mount whose object was imported and recognised."""

    spec: MountSpec
    kind: Kind
    target: Any


def load(spec: MountSpec) -> Mount:
    """Import the object a spec names and detect its kind; raises ``MountError``.

    Modules are found in the current directory first, as ``uvicorn``, ``hypercorn`` and
    ``daphne`` find them: the ``hybrid`` script's own directory is what Python puts first.
    """
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        target: Any = importlib.import_module(spec.module)
    except Exception as e:
        raise MountError(f"--mount {spec}: cannot import {spec.module!r}: {e}") from e
    for name in spec.attr.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise MountError(f"--mount {spec}: {spec.module!r} has no {spec.attr!r}") from None
    kind = detect(target)
    if kind is None:
        raise MountError(
            f"--mount {spec}: {spec.module}:{spec.attr} is {_describe(target)}, which is neither "
            "a Twisted IResource, an ASGI 3 application (an async callable taking scope, receive, "
            "send) nor a WSGI application (a plain callable taking environ, start_response)"
        )
    return Mount(spec, kind, target)


def detect(target: object) -> Kind | None:
    """The kind of a mountable object, or None when it is none of them.

    Callables are told apart by how they are called, which leaves no overlap: ASGI 3 apps are
    ``async`` with three required positional parameters, WSGI apps are not ``async`` and have
    two. Classes are none of them: an instance is what gets mounted.
    """
    if IResource.providedBy(target):
        return Kind.RESOURCE
    if inspect.isclass(target) or not callable(target):
        return None
    required = _required_positional(target)
    if _is_async(target):
        return Kind.ASGI if required == 3 else None
    return Kind.WSGI if required == 2 else None


def _is_async(target: object) -> bool:
    call = target if inspect.isroutine(target) else type(target).__call__
    unwrapped = inspect.unwrap(call)
    return inspect.iscoroutinefunction(unwrapped) or inspect.isasyncgenfunction(unwrapped)


def _required_positional(target: Callable[..., object]) -> int | None:
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    required = (p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    return len([p for p in required if p.default is p.empty])


def _describe(target: object) -> str:
    if inspect.isclass(target):
        return f"the class {target.__module__}.{target.__qualname__} (mount an instance?)"
    if callable(target):
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):
            pass
        else:
            bare = [p.replace(annotation=p.empty) for p in signature.parameters.values()]
            parameters = signature.replace(parameters=bare, return_annotation=signature.empty)
            return f"{'an async' if _is_async(target) else 'a'} callable taking {parameters}"
    return f"an object of type {type(target).__module__}.{type(target).__qualname__}"
