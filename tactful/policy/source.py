"""Read YAML keeping the line of every value, so errors can point at it."""

from __future__ import annotations

from typing import Any

import yaml

from tactful.policy.errors import PolicyError

Path = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys (a silent overwrite hides mistakes)."""


def load_yaml(text: str, file: str) -> tuple[Any, dict[Path, int]]:
    """Parse `text`; return the data and a map from each value's path to its 1-based line."""
    lines: dict[Path, int] = {}
    try:
        node = yaml.compose(text, Loader=_Loader)
        if node is None:
            return None, lines
        # Values are made here: a tag the safe loader has no constructor for (`=`, a
        # `!!python/...`) fails now, not while parsing.
        return _build(node, (), lines, file, _Loader("")), lines
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(file, [(line, "", f"not valid YAML: {problem}")]) from exc


def _build(node: yaml.Node, path: Path, lines: dict[Path, int], file: str, scalars: _Loader) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = scalars.construct_object(key_node)  # scalars only
            if not isinstance(key, str | int | bool):
                raise PolicyError(file, [(key_node.start_mark.line + 1, "", "keys must be text")])
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                raise PolicyError(
                    file,
                    [(key_node.start_mark.line + 1, _dotted((*path, key)), "duplicate key")],
                )
            out[key] = _build(value_node, (*path, key), lines, file, scalars)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, (*path, i), lines, file, scalars) for i, v in enumerate(node.value)]
    return scalars.construct_object(node)


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def dotted(path: Path) -> str:
    """`rules[3].window` for ("rules", 3, "window")."""
    return _dotted(path)


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())
