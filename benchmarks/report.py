"""Markdown tables: medians per case, with ratios against floor and websockets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .libs import FLOOR, WEBSOCKETS
from .scenarios import CPU_KEY

if TYPE_CHECKING:
    from .runner import Measurement
    from .scenarios import Case, Metric

#: Shown where a figure or a reference is missing, and after a ratio.
NONE, TIMES = "\u2013", "\u00d7"

Medians = dict[tuple[str, str], dict[str, list[float]]]


def _fmt(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def _ratio(value: float, ref: list[float] | None) -> str:
    if ref is None or ref[0] == 0:
        return NONE
    return f"{value / ref[0]:.2f}{TIMES}"


def _label(metric: Metric) -> str:
    return f"{metric.label} {'↑' if metric.higher_is_better else '↓'}"


def _table(lines: list[str], header: list[str], rows: list[list[str]]) -> None:
    lines.append("| " + " | ".join(header) + " |")
    lines.append(
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"
    )
    lines.extend("| " + " | ".join(row) + " |" for row in rows)


def _errors(case: Case, libraries: list[str], results: list[Measurement]) -> list[str]:
    notes = []
    for library in libraries:
        errors = [
            m.error
            for m in results
            if m.case == case.name and m.library == library and m.error
        ]
        if errors:
            first = errors[0].splitlines()[0]
            notes.append(f"- {library}: {len(errors)} failed run(s): {first}")
    return notes


def case_table(
    case: Case, libraries: list[str], med: Medians, results: list[Measurement]
) -> list[str]:
    lines = [f"### {case.title}", ""]
    header = ["library"]
    for metric in case.metrics:
        header += [_label(metric), "vs floor", "vs websockets"]
    header += ["spread", "runs"]
    rows = []
    for library in libraries:
        stats = med.get((case.name, library))
        if stats is None:
            rows.append([library] + ["error"] * (3 * len(case.metrics)) + ["", "0"])
            continue
        row = [library]
        for metric in case.metrics:
            value = stats[metric.key][0]
            row += [
                _fmt(value, metric.digits),
                _ratio(value, med.get((case.name, FLOOR), {}).get(metric.key)),
                _ratio(value, med.get((case.name, WEBSOCKETS), {}).get(metric.key)),
            ]
        median, low, high, runs = stats[case.metrics[0].key]
        spread = (
            f"±{(high - low) / 2 / median * 100:.1f}%" if runs > 1 and median else NONE
        )
        rows.append([*row, spread, str(int(runs))])
    _table(lines, header, rows)
    lines += _errors(case, libraries, results)
    lines.append("")
    return lines


def summary_tables(cases: list[Case], libraries: list[str], med: Medians) -> list[str]:
    """One ratio per case (its first metric), against each reference present."""
    legend = "; ".join(
        dict.fromkeys(f"{c.scenario}: {_label(c.metrics[0])}" for c in cases)
    )
    lines: list[str] = []
    for ref in (FLOOR, WEBSOCKETS):
        if ref not in libraries:
            continue
        lines += [f"### Summary: ratio vs {ref}", "", f"Metric per case: {legend}.", ""]
        header = ["library", *(c.name for c in cases)]
        rows = []
        for library in libraries:
            row = [library]
            for case in cases:
                key = case.metrics[0].key
                stats = med.get((case.name, library), {}).get(key)
                ref_stats = med.get((case.name, ref), {}).get(key)
                row.append(NONE if stats is None else _ratio(stats[0], ref_stats))
            rows.append(row)
        _table(lines, header, rows)
        lines.append("")
    lines += _cpu_summary(cases, libraries, med)
    return lines


def _cpu_summary(cases: list[Case], libraries: list[str], med: Medians) -> list[str]:
    """CPU per operation of both processes, as a ratio to the floor's.

    The rates above depend on how the two processes share the cores with
    whatever else runs; CPU time counts only the work done, so this table is
    the steadier comparison on a busy machine.
    """
    timed = [c for c in cases if any(m.key == CPU_KEY for m in c.metrics)]
    if FLOOR not in libraries or not timed:
        return []
    lines = [
        "### Summary: CPU time per operation (client + server) vs floor",
        "",
        (
            "µs of CPU per round trip (rtt, fanout) or per message (stream), "
            "both processes together, and as a ratio to the floor's (↓: lower "
            f"is better; 0.9{TIMES} the floor's speed is 1.11{TIMES} its CPU)."
        ),
        "",
    ]
    rows = []
    for library in libraries:
        row = [library]
        for case in timed:
            stats = med.get((case.name, library), {}).get(CPU_KEY)
            ref = med.get((case.name, FLOOR), {}).get(CPU_KEY)
            row.append(
                NONE
                if stats is None
                else f"{_fmt(stats[0], 1)} ({_ratio(stats[0], ref)})"
            )
        rows.append(row)
    _table(lines, ["library", *(c.name for c in timed)], rows)
    lines.append("")
    return lines


def render(
    cases: list[Case], libraries: list[str], med: Medians, results: list[Measurement]
) -> str:
    lines: list[str] = []
    for case in cases:
        lines += case_table(case, libraries, med, results)
    lines += summary_tables(cases, libraries, med)
    return "\n".join(lines)
