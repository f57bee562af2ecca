"""Management-command plumbing shared by the operator's commands: option errors in Spanish.

Django's `CommandParser` is argparse's, whose messages are English. `SpanishOptionsMixin`
translates the ones an operator can meet and exits with status 2 (argparse's usage error), from
the command line and from `call_command` alike (there as a `CommandError` with returncode 2).
"""

from __future__ import annotations

import argparse
import re
from typing import Any, NoReturn

from django.core.management.base import CommandError, CommandParser

# argparse's messages (Python 3.11) and their Spanish; the first match wins.
_TRANSLATIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^unrecognized arguments: (?P<rest>.*)$"), "opciones no reconocidas: {rest}"),
    (re.compile(r"^the following arguments are required: (?P<rest>.*)$"), "faltan las opciones: {rest}"),
    (re.compile(r"^argument (?P<name>\S+): expected one argument$"), "la opción {name} necesita un valor"),
    (
        re.compile(r"^argument (?P<name>\S+): invalid (?P<type>\w+) value: (?P<value>.*)$"),
        "la opción {name} no acepta el valor {value}",
    ),
    (
        re.compile(r"^argument (?P<name>\S+): invalid choice: (?P<value>\S+) \(choose from (?P<rest>.*)\)$"),
        "la opción {name} no acepta {value} (valores posibles: {rest})",
    ),
    (
        re.compile(r"^argument (?P<name>\S+): ignored explicit argument (?P<value>.*)$"),
        "la opción {name} no lleva valor ({value})",
    ),
    (
        re.compile(r"^ambiguous option: (?P<name>\S+) could match (?P<rest>.*)$"),
        "la opción {name} es ambigua: puede ser {rest}",
    ),
    (re.compile(r"^argument (?P<name>\S+): (?P<rest>.*)$"), "opción {name}: {rest}"),
]


def spanish_option_error(message: str) -> str:
    """argparse's English `message` in Spanish (unknown messages are returned as they are)."""
    for pattern, template in _TRANSLATIONS:
        match = pattern.match(message)
        if match:
            return template.format(**match.groupdict())
    return message


def positive_int(text: str) -> int:
    """argparse `type` for options that count something: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"«{text}» no es un número entero") from None
    if value < 1:
        raise argparse.ArgumentTypeError("debe ser un número entero mayor o igual a 1")
    return value


class SpanishOptionsMixin:
    """Mix into a `BaseCommand` so that option errors are Spanish and exit with status 2."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser: CommandParser = super().create_parser(prog_name, subcommand, **kwargs)  # type: ignore[misc]

        def error(message: str) -> NoReturn:
            text = spanish_option_error(message)
            if parser.called_from_command_line:
                parser.exit(2, f"{parser.prog}: error: {text}\nUse «{parser.prog} --help» para ver las opciones.\n")
            raise CommandError(f"Error: {text}", returncode=2)

        parser.error = error  # type: ignore[method-assign]
        return parser
