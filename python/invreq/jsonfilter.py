"""CLN's ``filter``: the request member that says which fields of the result to keep.

A request may carry ``"filter": {...}`` beside ``method`` and ``params`` (lightning-cli
``-l/--filter``). It is a template of the result: a key whose value is ``true`` keeps that
field, an object or a one-element array descends into it. lightningd applies it while it
writes the result (``common/json_filter.c``); this module walks our finished result the
same way, so every quirk of that walk is reproduced, not improved on:

- a field not named in the template is left out; order is the result's, never the filter's;
- ``true`` on an array keeps it whole; ``true`` on an object keeps the objects and arrays
  inside it whole, but not its plain values (lightningd checks those by name);
- ``{}`` at the top keeps the result's objects and arrays whole and none of its plain values;
- plain values inside a kept array are kept whatever the element template says;
- an array template where the result has an object, or the other way round, leaves that
  part out and adds ``warning_parameter_filter`` at the end of the result, e.g.
  ``.invoicerequests is an array`` (the first such place, keys in byte order);
- a filter that is not an object, an array template without exactly one element, or a
  value that is not ``true`` is refused (-32602, ``filter: Expected object: invalid
  token ...``), before the method is even looked up, as lightningd does.

Errors are not filtered; nor is anything outside ``result``.
"""

from __future__ import annotations

from typing import Any

from invreq.errors import InvalidParams
from invreq.params import token_text

__all__ = ["Filter", "apply", "misuse", "parse"]


class _Node:
    """One level of the template, with the walk's state (as lightningd keeps it)."""

    __slots__ = ("children", "depth", "element", "misused", "parent", "positive")

    def __init__(self, parent: _Node | None) -> None:
        self.parent = parent
        self.children: dict[str, _Node] = {}
        self.element: _Node | None = None  # set: the template of an array's elements
        self.misused = False
        self.depth = 0  # > 0: inside a part kept (positive) or left out whole
        self.positive = True

    def misuse(self) -> str | None:
        """Where the template's shape disagreed with the result's, or None."""
        if self.misused:
            return " is an object" if self.element is not None else " is an array"
        if self.element is not None:
            inner = self.element.misuse()
            return None if inner is None else "[]" + inner
        for key in sorted(self.children, key=lambda k: k.encode()):
            inner = self.children[key].misuse()
            if inner is not None:
                return f".{key}{inner}"
        return None


class Filter:
    """A parsed template; :func:`apply` it to one result (it holds the walk's state)."""

    def __init__(self, root: _Node) -> None:
        self.root = root


def _bad(reason: str, value: Any) -> InvalidParams:
    return InvalidParams(f"filter: {reason}: invalid token '{token_text(value)}'")


def _build(value: Any, node: _Node) -> None:
    if isinstance(value, list):
        if len(value) != 1:
            raise _bad("Arrays can only have one element", value)
        node.element = _Node(node)
        _build(value[0], node.element)
        return
    if not isinstance(value, dict):
        return  # an array's element that is a plain value: a template with nothing inside
    for key, sub in value.items():
        child = _Node(node)
        node.children[key] = child
        if isinstance(sub, (dict, list)):
            _build(sub, child)
        elif sub is not True:
            raise _bad("value must be true", sub)


def parse(value: Any) -> Filter:
    """The request's ``filter`` member as a template; raises ``InvalidParams``."""
    if not isinstance(value, dict):
        raise _bad("Expected object", value)
    root = _Node(None)
    _build(value, root)
    return Filter(root)


class _Cursor:
    """Where the walk is in the template: lightningd's down / ok / up, step for step."""

    def __init__(self, node: _Node) -> None:
        self.node = node

    def ok(self, member: str | None) -> bool:
        n = self.node
        if n.depth > 0 or member is None:
            return n.positive
        return member in n.children

    def down(self, member: str | None) -> bool:
        n = self.node
        if n.depth > 0:
            n.depth += 1
            return n.positive
        if n.element is None and not n.children:  # a leaf (`true`): all of it
            n.depth = 1
            return True
        child: _Node | None
        if member is None:
            child = n.element
            if child is None:
                n.misused = True
        elif n.element is not None:
            n.misused = True
            child = None
        else:
            child = n.children.get(member)
        if child is not None:
            self.node = child
            return True
        n.positive = False
        n.depth = 1
        return False

    def up(self) -> None:
        n = self.node
        if n.depth == 0:
            n.positive = True
            assert n.parent is not None
            self.node = n.parent
        else:
            n.depth -= 1


_SKIP = object()


def _item(cur: _Cursor, member: str | None, value: Any) -> Any:
    if not isinstance(value, (dict, list)):
        return value if cur.ok(member) else _SKIP
    before = cur.node
    if not cur.down(member):
        cur.up()
        return _SKIP
    if cur.node is before:  # kept whole: nothing below is checked
        cur.up()
        return value
    out: Any
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            kept = _item(cur, k, v)
            if kept is not _SKIP:
                out[k] = kept
    else:
        out = []
        for v in value:
            kept = _item(cur, None, v)
            if kept is not _SKIP:
                out.append(kept)
    cur.up()
    return out


def apply(f: Filter, result: Any) -> Any:
    """``result`` as lightningd writes it under ``f`` (a new object; ``result`` unchanged)."""
    if not isinstance(result, dict):
        return result
    cur = _Cursor(f.root)
    out: dict[str, Any] = {}
    for k, v in result.items():
        kept = _item(cur, k, v)
        if kept is not _SKIP:
            out[k] = kept
    warning = misuse(f)
    if warning is not None:
        out["warning_parameter_filter"] = warning
    return out


def misuse(f: Filter) -> str | None:
    """Where ``f``'s shape disagreed with what it was applied to so far (the text of
    lightningd's ``warning_parameter_filter``), or None."""
    return f.root.misuse()
