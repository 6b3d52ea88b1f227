"""SQLAlchemy statements as the driver's own SQL, to send several in one round trip.

psycopg2 sends a string of several statements in one round trip and returns the rows of
the last one. The answer writer uses that to send a batch's writes, its COMMIT and the
read of its results together (see `server.exam.delivery`). A statement is still defined
once, as a SQLAlchemy construct; this renders it for the driver, with the values of its
constants bound under names of its own so that several statements can share one string.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy.engine import Dialect

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def driver_sql(stmt: Any, dialect: Dialect, suffix: str, shared: tuple[str, ...] = ()) -> tuple[str, dict]:
    """`stmt` compiled for `dialect` (a pyformat driver such as psycopg2): the SQL and the
    processed values of its constants.

    Every parameter is renamed `<name><suffix>` except those in `shared`; the caller
    binds its own parameters (those without a value) under the new names. The constants
    have gone through their types' bind processors (an enum member becomes its stored
    string), as SQLAlchemy would have done."""
    if dialect.paramstyle != "pyformat":
        raise ValueError(f"driver_sql needs a pyformat driver, not {dialect.paramstyle}")
    compiled = stmt.compile(dialect=dialect)
    if compiled.escaped_bind_names:
        raise ValueError(f"parameter names that need escaping: {sorted(compiled.escaped_bind_names)}")
    given: set[str] = set()
    constants: dict[str, Any] = {}
    for bind, name in compiled.bind_names.items():
        if bind.callable is None and bind.value is None:
            given.add(name)  # the caller's: ids, times
            continue
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        value = bind.effective_value
        constants[name + suffix] = process(value) if process else value

    def rename(m: re.Match) -> str:
        name = m.group(1)
        if name not in given and name + suffix not in constants:
            raise ValueError(f"unknown parameter {name!r} in the compiled statement")
        return m.group(0) if name in shared else f"%({name}{suffix})s"

    return _PLACEHOLDER.sub(rename, compiled.string), constants
