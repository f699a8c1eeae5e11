"""Configuration files in YAML whose errors name the line: the organisation and the ladder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml


class YamlFileError(ValueError):
    """A file that cannot be used; the message names the file, the line and the problem."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.problem = problem


FileError = TypeVar("FileError", bound=YamlFileError)


class Located(dict[str, Any]):
    """A YAML mapping that remembers the line it started on, and each key's, for errors."""

    line: int = 0
    key_lines: dict[str, int]

    def at(self, key: str) -> int:
        """The line of `key` in this mapping, else the mapping's first line."""
        return self.key_lines.get(key, self.line)


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)
    seen: set[str] = set()
    for key_node, _ in node.value:
        key = str(loader.construct_object(key_node))
        if key in seen:
            raise YamlFileError(
                loader.name, key_node.start_mark.line + 1, f"khóa trùng / duplicate key '{key}'"
            )
        seen.add(key)
    out = Located({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    out.line = node.start_mark.line + 1
    out.key_lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    return out


# Dates stay text until checked by the reader, so a bad one is reported with its line.
def _text(loader: _Loader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _text)


def parse_mapping(source: str, *, path: str, error: type[FileError]) -> Located:
    """The document in `source`, which must be a mapping; problems raise `error`."""
    loader = _Loader(source)
    loader.name = path
    try:
        doc = loader.get_single_data()
    except YamlFileError as exc:
        raise error(path, exc.line, exc.problem) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise error(
            path,
            mark.line + 1 if mark else None,
            f"YAML không hợp lệ / invalid YAML: {exc.problem}",
        ) from exc
    finally:
        loader.dispose()
    if not isinstance(doc, Located):
        raise error(path, 1, "tệp phải là một bảng / the file must be a mapping")
    return doc


def read_mapping(path: Path, *, error: type[FileError]) -> Located:
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(path, None, f"không đọc được tệp / cannot read the file: {exc}") from exc
    return parse_mapping(source, path=str(path), error=error)
