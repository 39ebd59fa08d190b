"""The fault matrix: one cell per fault x approach, loss and applied duplicates in red."""

from __future__ import annotations

import re

from cdc_support.faults.matrix import FaultRow, matrix_html, matrix_markdown


def _row(fault: str, approach: str, **changes: object) -> FaultRow:
    values: dict[str, object] = {
        "fault": fault,
        "approach": approach,
        "committed": 5000,
        "delivered": 5261,
        "lost": 0,
        "duplicated_in_stream": 261,
        "duplicates_applied": 0,
        "table_equal": True,
        "recovery_seconds": 4.2,
        "guarantee": "at-least-once",
        "passed": True,
    }
    values.update(changes)
    return FaultRow(**values)  # type: ignore[arg-type]


ROWS = [
    _row("kill -9 Kafka Connect", "PostgreSQL Debezium"),
    _row("kill -9 Kafka Connect", "MariaDB Debezium", lost=3, passed=False, table_equal=False),
    _row("restart PostgreSQL", "PostgreSQL Debezium", duplicates_applied=2, passed=False),
    _row(
        "kill -9 <reader> & co",
        "PostgreSQL native <reader>",
        duplicates_applied=None,
        table_equal=None,
        recovery_seconds=None,
    ),
]


def _cells(page: str) -> list[str]:
    return re.findall(r"<td class=\"([^\"]*)\"", page)


def test_every_fault_is_a_row_and_every_approach_a_column() -> None:
    page = matrix_html(ROWS)
    body = page.split("<tbody>", 1)[1]
    assert body.count("<tr>") == 3  # three faults
    head = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    for approach in ("PostgreSQL Debezium", "MariaDB Debezium", "PostgreSQL native &lt;reader&gt;"):
        assert f"<th>{approach}</th>" in head
    assert "lost 0 · dup 261 · applied dup 0 · 4.2 s" in page
    assert '<span class="bad">lost 3</span> · dup 261 · applied dup 0 · 4.2 s' in page
    assert "delivered 5261 of 5000 committed" in page
    # a combination that was not run is an empty, marked cell
    assert (
        page.count('<td class="cell none">not run</td>') == 9 - 4
    )  # 3 faults x 3 approaches, 4 run


def test_loss_and_applied_duplicates_are_red_and_passes_green() -> None:
    page = matrix_html(ROWS)
    assert _cells(page).count("cell pass") == 2
    assert _cells(page).count("cell fail") == 2
    assert '<span class="bad">lost 3</span>' in page
    assert '<span class="bad">applied dup 2</span>' in page
    assert '<span class="bad">table differs</span>' in page
    assert '<span class="bad">lost 0</span>' not in page
    assert "2 of 4 fault x approach runs passed" in page


def test_a_row_without_a_sink_says_so() -> None:
    page = matrix_html(ROWS[3:])
    assert "lost 0 · dup 261 · applied dup — · — s" not in page
    assert "lost 0 · dup 261 · no sink · recovery not measured" in page


def test_all_text_is_escaped_and_the_caption_explains_duplicates() -> None:
    page = matrix_html([_row("<script>alert(1)</script>", "a & b", guarantee="<at-least-once>")])
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &amp; b" in page and "&lt;at-least-once&gt;" in page
    caption = page.split("<caption>", 1)[1].split("</caption>", 1)[0]
    assert "last committed position" in caption
    assert "primary key" in caption and "offsets" in caption


def test_the_markdown_matrix_has_one_line_per_row_and_escapes_pipes() -> None:
    text = matrix_markdown([*ROWS, _row("kill | restart", "x")])
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(ROWS) + 1  # header, rule, rows
    assert "kill \\| restart" in text
    assert table[2].startswith("| kill -9 Kafka Connect | PostgreSQL Debezium | 5261 / 5000 | 0 |")
    assert "**3**" in table[3] and "FAIL" in table[3]
    assert "no sink" in table[5] and "—" in table[5]
