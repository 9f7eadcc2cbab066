"""The fault-injection suite's ledger: every test of ``tests/test_faults.py`` records what it
injected and what came of it, and the session prints one table (``pytest_terminal_summary`` in
``tests/conftest.py``), the table the docs show."""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS = ("fault", "injected", "survived", "data lost", "code executed")


@dataclass
class Row:
    fault: str
    injected: int = 0
    survived: int = 0
    data_lost: int = 0
    code_executed: int = 0


LEDGER: dict[str, Row] = {}


def record(fault: str, *, survived: bool, data_lost: bool = False,
           code_executed: bool = False, injected: int = 1) -> None:  # fmt: skip
    """``injected`` injections of ``fault`` in one run (one unless a proxy counted more):
    ``survived`` when the run ended as the suite requires (a clean refusal, or a re-run
    identical to an uninterrupted run)."""
    row = LEDGER.setdefault(fault, Row(fault))
    row.injected += injected
    row.survived += injected * int(survived)
    row.data_lost += int(data_lost)
    row.code_executed += int(code_executed)


def table() -> list[str]:
    """The ledger as a Markdown table (empty when nothing was injected)."""
    if not LEDGER:
        return []
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---:|---:|---:|---:|"]
    for row in LEDGER.values():
        lines.append(f"| {row.fault} | {row.injected} | {row.survived} | {row.data_lost} | "
                     f"{row.code_executed} |")  # fmt: skip
    return lines
