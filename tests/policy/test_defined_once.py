"""Every constant is defined once: a limit, status set or message written in two modules drifts the
day one of them changes. Other modules import it (a re-export by import is fine)."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("activities", "api", "bench", "books", "cli", "demo", "foundation", "gravity", "models", "operations", "stack", "workflows")

#: Names two modules define on purpose, each for a reason of its own (not one rule written twice).
SAME_NAME_ALLOWED: dict[str, str] = {
    # The demo's and the finance bench's populations are two data sets, each with names of its own.
    "FIRST_NAMES": "demo/seed.py and bench/finance_books.py",
    "LAST_NAMES": "demo/seed.py and bench/finance_books.py",
    "PET_NAMES": "demo/seed.py and bench/finance_books.py",
}

#: Values two names share by coincidence: the same literal meaning different things.
SAME_VALUE_ALLOWED: dict[object, str] = {
    # An Idempotency-Key's length, a page's size and a plan name's length: three limits, one round number.
    200: "MAX_KEY_LENGTH, MAX_LIMIT, MAX_PLAN_NAME",
    # Gravity answers 202 Accepted to a bulk request and to a terminal's start: two endpoints, one HTTP status.
    202: "BULK_ACCEPTED_STATUS, TERMINAL_START_STATUS",
    # An id and a page cursor are both URL-safe tokens; the API's ids and the pages' cursors may part.
    r"^[A-Za-z0-9_\-]+$": "ID_PATTERN, CURSOR_PATTERN",
    # How long the chaos run waits for an Update and how long the demo waits for its workers to poll.
    120.0: "UPDATE_TIMEOUT_S, WORKERS_START_S",
}


def project_modules() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def _literal(node: ast.expr) -> object | None:
    """The value of a literal (number, string, or a tuple/set/frozenset of literals), else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("frozenset", "set", "tuple") and len(node.args) == 1:
        node = node.args[0]
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (tuple, list, set, frozenset)) and all(isinstance(item, (int, float, str)) for item in value):
        return frozenset(value) if isinstance(value, (set, frozenset)) else tuple(value)
    return None


def constants(path: Path) -> Iterator[tuple[str, object]]:
    """The module-level UPPER_CASE names assigned a literal."""
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        literal = _literal(value)
        if literal is None:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id.isupper() and len(target.id) > 1:
                yield target.id, literal


def _trivial(value: object) -> bool:
    """Small numbers, short words and tiny tuples coincide by chance; they are not a rule."""
    if isinstance(value, (int, float)):
        return abs(value) <= 100 or value in (1_000, 10_000)
    if isinstance(value, str):
        return len(value) < 12
    return len(value) < 2  # type: ignore[arg-type]


def _where() -> tuple[dict[str, set[str]], dict[object, set[str]]]:
    by_name: dict[str, set[str]] = defaultdict(set)
    by_value: dict[object, set[str]] = defaultdict(set)
    for path in project_modules():
        module = path.relative_to(ROOT).as_posix()
        for name, value in constants(path):
            by_name[name].add(module)
            if not _trivial(value):
                by_value[value].add(f"{module}:{name}")
    return by_name, by_value


def test_no_constant_name_is_defined_in_two_modules() -> None:
    by_name, _ = _where()
    twice = {name: sorted(modules) for name, modules in by_name.items() if len(modules) > 1 and name not in SAME_NAME_ALLOWED}
    assert twice == {}, "define each once and import it elsewhere"


def test_no_literal_is_defined_under_two_names() -> None:
    _, by_value = _where()
    twice = {repr(value): sorted(places) for value, places in by_value.items() if len(places) > 1 and value not in SAME_VALUE_ALLOWED}
    assert twice == {}, "define each once and import it elsewhere"


def test_the_check_sees_a_constant_defined_twice(tmp_path: Path) -> None:
    """The parser finds what the two tests above look for (else they would pass on nothing)."""
    module = tmp_path / "m.py"
    module.write_text('MAX_DAYS_BACK = 90\nFINAL = frozenset({"cancelled", "ended"})\nfrom x import Y\nlower = 3\n')
    assert dict(constants(module)) == {"MAX_DAYS_BACK": 90, "FINAL": frozenset({"cancelled", "ended"})}
    assert sum(1 for _ in project_modules()) > 100
