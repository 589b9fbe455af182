"""The trainers' command lines: one option per field of their dataclass config."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import fields
from typing import Any

# adds a field's option itself (name, default) -- or nothing, to leave the field at its default
AddOption = Callable[[argparse.ArgumentParser, str, Any], None]


def config_parser(config_type: type, prog: str, description: str,
                  special: dict[str, AddOption] | None = None) -> argparse.ArgumentParser:
    """``--field-name`` for each field of the dataclass ``config_type``, typed by its default;
    booleans as ``--flag`` / ``--no-flag``. ``special``: fields whose option is added otherwise."""
    defaults = config_type()
    parser = argparse.ArgumentParser(prog=prog, description=description)
    for f in fields(config_type):
        value = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if special and f.name in special:
            special[f.name](parser, flag, value)
        elif isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)
    return parser
