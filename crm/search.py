"""Search that ignores case and accents, the same on SQLite and PostgreSQL (docs/decisions.md,
"Accent- and case-insensitive search").

People type "Lucia" for "Lucía" and "quispe" for "QUISPE". Searched tables carry a `search_text`
column that the database computes itself on every write (a stored `GeneratedField`): the
searchable columns joined by spaces and *folded* by `Folded`, which maps every letter of
`FOLD_MAP` (A-Z and the accented Latin letters of Spanish, Portuguese, French and German) to
plain lowercase ASCII. `fold()` applies the same map to what a person typed, so
`search_text LIKE '%<fold(term)>%'` finds the same rows on both databases, whatever their
collation or locale: no extension to install, and nothing to keep in sync by hand on `save()`,
`bulk_create()` or `update()`. Letters outside the map (other scripts) are compared as they are.

Changing `FOLD_MAP` changes new writes only: ship it with a migration that re-creates the
generated columns (remove and add the field).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Func, TextField, Value
from django.db.models.functions import Cast, Coalesce, Replace

_ACCENTED: dict[str, str] = {
    "a": "áàâäãåÁÀÂÄÃÅ",
    "e": "éèêëÉÈÊË",
    "i": "íìîïÍÌÎÏ",
    "o": "óòôöõøÓÒÔÖÕØ",
    "u": "úùûüÚÙÛÜ",
    "y": "ýÿÝŸ",
    "n": "ñÑ",
    "c": "çÇ",
    "ae": "æÆ",
    "oe": "œŒ",
    "ss": "ß",
}

#: Character -> what it folds to: A-Z to a-z, and the accented letters above to plain ASCII.
FOLD_MAP: dict[str, str] = {chr(code): chr(code + 32) for code in range(ord("A"), ord("Z") + 1)} | {
    letter: plain for plain, letters in _ACCENTED.items() for letter in letters
}
_TABLE = str.maketrans(FOLD_MAP)


def fold(text: str) -> str:
    """`text` folded as `Folded` folds it in the database: "Lucía QUISPE" -> "lucia quispe"."""
    return text.translate(_TABLE)


class Folded(Func):
    """SQL of `fold()` over one text expression; immutable on PostgreSQL and deterministic on
    SQLite, so usable in a generated column.

    PostgreSQL: the built-in `translate()` for the one-letter entries of `FOLD_MAP`, `REPLACE`
    for the rest (æ, œ, ß). SQLite has no `translate()`, and its parser refuses the ~90 nested
    `REPLACE` calls that would do: `crm_fold()`, which is `fold()` registered as a deterministic
    function on every SQLite connection (`register_sqlite_fold`). Both apply the same `FOLD_MAP`.
    """

    arity = 1
    output_field = TextField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return super().as_sql(compiler, connection, function=SQLITE_FUNCTION, **extra_context)

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        single = {letter: plain for letter, plain in FOLD_MAP.items() if len(plain) == 1}
        expression: Any = Func(
            self.get_source_expressions()[0],
            Value("".join(single)),
            Value("".join(single.values())),
            function="TRANSLATE",
            output_field=TextField(),
        )
        for letter, plain in FOLD_MAP.items():
            if len(plain) > 1:
                expression = Replace(expression, Value(letter), Value(plain), output_field=TextField())
        return compiler.compile(expression)

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        # Any other database: one REPLACE per entry.
        expression: Any = self.get_source_expressions()[0]
        for letter, plain in FOLD_MAP.items():
            expression = Replace(expression, Value(letter), Value(plain), output_field=TextField())
        return compiler.compile(expression)


SQLITE_FUNCTION = "crm_fold"


def _sqlite_fold(value: Any) -> Any:
    return fold(value) if isinstance(value, str) else value


def register_sqlite_fold(sender: Any, connection: Any, **kwargs: Any) -> None:
    """`connection_created` receiver (crm/apps.py): `crm_fold()` on every SQLite connection.
    A tool that opens the SQLite file without Django cannot write the searched tables."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_FUNCTION, 1, _sqlite_fold, deterministic=True)


def search_text(*parts: Any) -> Folded:
    """The expression of a `search_text` generated column: `parts` (field names or expressions)
    as text, NULL as empty text, joined by spaces with a flat `||` chain (Django's `Concat` nests
    one level per part, past what SQLite's parser takes inside a function call), folded."""
    texts: list[Any] = []
    for part in parts:
        if texts:
            texts.append(Value(" "))
        texts.append(Coalesce(Cast(part, TextField()), Value(""), output_field=TextField()))
    return Folded(Func(*texts, template="(%(expressions)s)", arg_joiner=" || ", output_field=TextField()))
