"""Read the configuration file, YAML (``costagent.yaml``) or TOML (``costagent.toml``), into plain data and a
map from each key's path to its line, so that an error can name the key *and* the line.

YAML is read with PyYAML's safe loader (no tags that build objects); a key given twice in one mapping is an
error (YAML's own rule that PyYAML does not enforce). TOML is read with the standard library; its lines are
found from the section headers and ``key =`` lines.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from providers.errors import ConfigurationError

YAML_SUFFIXES = (".yaml", ".yml")
#: A key path in an error message: ``apply.windows[0].days``, ``gcp.endpoints.compute``, ``[apply]``.
_PATH = re.compile(r"(?<![\w/.-])([a-z_]+(?:\.[A-Za-z0-9_-]+|\[\d+\])+|(?<=\[)[a-z_]+(?=\]))")


@dataclass(frozen=True)
class Source:
    data: dict[str, Any]
    lines: Mapping[str, int] = field(default_factory=dict)  # "apply.windows[0].days" -> 1-based line

    def line_of(self, path: str) -> int | None:
        """The line of ``path``, else of its nearest enclosing key."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", path) if re.search(r"(\.[^.\[]+|\[\d+\])$", path) else ""
        return None


def read(path: Path) -> Source:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"config {where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"config {where}: cannot read it ({exc})") from None
    if path.suffix.lower() in YAML_SUFFIXES:
        return _yaml(text, where)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config {where}: not valid TOML ({exc})") from None
    return Source(data, _toml_lines(text))


class _Loader(yaml.SafeLoader):
    """Safe loading that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml(text: str, where: str) -> Source:
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigurationError(f"config {where}{at}: not valid YAML ({problem})") from None
    if data is None:
        return Source({})
    if not isinstance(data, dict):
        raise ConfigurationError(f"config {where}: the top level must be a mapping of sections (aws:, apply:, ...)")
    lines: dict[str, int] = {}
    _walk(node, "", lines)
    return Source(data, lines)


def _walk(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            child = f"{path}.{key_node.value}" if path else str(key_node.value)
            lines[child] = key_node.start_mark.line + 1
            _walk(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines)


def _toml_lines(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    section, arrays = "", {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if header := re.fullmatch(r"\[\[\s*([\w.-]+)\s*\]\]", line):
            name = header[1]
            index = arrays[name] = arrays.get(name, -1) + 1
            section = f"{name}[{index}]"
            lines.setdefault(name, number)
            lines[section] = number
        elif header := re.fullmatch(r"\[\s*([\w.-]+)\s*\]", line):
            section = header[1]
            lines[section] = number
        elif key := re.match(r"([\w-]+)\s*=", line):
            lines[f"{section}.{key[1]}" if section else key[1]] = number
    return lines


def with_line(exc: ConfigurationError, source: Source) -> ConfigurationError:
    """``exc`` with the line of the first key path its message names (``config FILE line N: ...``)."""
    message = str(exc)
    head, sep, rest = message.partition(": ")
    if not sep or " line " in head:
        return exc
    for match in _PATH.finditer(rest):
        line = source.line_of(match.group(1))
        if line is not None:
            return ConfigurationError(f"{head} line {line}: {rest}", hint=exc.hint)
    return exc
