"""The Reports charts (hub.console.charts): well-formed, labelled SVG whatever the data, user
text escaped, gaps shown as gaps, round axis ticks, and the same bytes for the same input."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from hub.console.charts import (
    NO_DATA,
    Series,
    bar_chart,
    contrast,
    data_table,
    heat_color,
    heat_map,
    ink_on,
    line_chart,
    nice_ticks,
    number,
    percent,
)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '</svg><script>alert("x")</script>&amp;'
WEEKS = [f"W{i}" for i in range(1, 13)]


def parse(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    return ET.fromstring(str(markup))


def as_parsed(text: str) -> str:
    """``text`` as an XML parser reads it back: characters XML cannot carry replaced, line
    ends normalised."""
    kept = "".join(
        c
        if c in "\t\n\r" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" or c > "\uffff"
        else "\ufffd"
        for c in text
    )
    return kept.replace("\r\n", "\n").replace("\r", "\n")


def texts(root: ET.Element) -> str:
    return " ".join("".join(element.itertext()) for element in root)


def check_accessible(root: ET.Element, title: str) -> str:
    """The chart's name and description, as a screen reader gets them; returns the desc."""
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert root.get("preserveAspectRatio") == "xMidYMid meet"
    assert len((root.get("viewBox") or "").split()) == 4
    title_el, desc_el = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title_el is not None
    assert desc_el is not None
    assert (root.get("aria-labelledby") or "").split() == [title_el.get("id"), desc_el.get("id")]
    assert (title_el.text or "") == as_parsed(title)
    assert desc_el.text
    return desc_el.text


def test_line_chart_is_labelled_and_described() -> None:
    median = Series("median", [5, 6, 4, 7, 5, 4, 3, 4, 5, 4, 4, 4])
    p90 = Series("p90", [12, 14, 9, 15, 11, 10, 9, 10, 12, 9, 9, 9])
    root = parse(line_chart("First response time", WEEKS, [median, p90], unit="min"))
    desc = check_accessible(root, "First response time")
    assert desc.startswith("Line chart of 2 series over 12 periods from W1 to W12.")
    assert "median: latest 4 min (W12), highest 7 min (W4)." in desc
    legend = root.find(f"{SVG}g[@class='chart-legend']")
    assert legend is not None
    assert "median" in texts(legend)
    assert "p90" in texts(legend)
    assert len(root.findall(f".//{SVG}polyline")) == 2
    assert len(root.findall(f".//{SVG}circle")) == 24
    y_ticks = root.find(f"{SVG}g[@class='chart-axis chart-y-axis']")
    assert y_ticks is not None
    assert [t.text for t in y_ticks.iter(f"{SVG}text")] == ["0 min", "5 min", "10 min", "15 min"]


def test_a_single_series_has_no_legend() -> None:
    root = parse(line_chart("Median", WEEKS[:3], [Series("median", [1.5, 2.25, 3])]))
    assert root.find(f"{SVG}g[@class='chart-legend']") is None
    assert "over 3 periods" in check_accessible(root, "Median")


def test_none_breaks_the_line_into_segments() -> None:
    values = [1.0, 2.0, None, 3.0, 4.0, 5.0, None, None, 2.0, None, 1.0, 1.0]
    root = parse(line_chart("Gaps", WEEKS, [Series("median", values)]))
    lines = root.findall(f".//{SVG}polyline")
    assert [len((line.get("points") or "").split()) for line in lines] == [2, 3, 2]
    # a lone point between gaps still shows, as a dot
    assert len(root.findall(f".//{SVG}circle")) == 8


def test_many_x_labels_are_thinned_keeping_the_latest() -> None:
    labels = [f"2026-W{i:02d}" for i in range(1, 53)]
    root = parse(line_chart("Year", labels, [Series("median", [float(i) for i in range(52)])]))
    axis = root.find(f"{SVG}g[@class='chart-axis chart-x-axis']")
    assert axis is not None
    shown = [t.text for t in axis.iter(f"{SVG}text")]
    assert 2 <= len(shown) <= 8
    assert shown[-1] == "2026-W52"


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0, 37, [0, 10, 20, 30, 40]),
        (3, 37, [0, 10, 20, 30, 40]),
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (0, 0.37, [0, 0.1, 0.2, 0.3, 0.4]),
        (0, 100, [0, 20, 40, 60, 80, 100]),
        (0, 3, [0, 1, 2, 3]),
        (-37, 0, [-40, -30, -20, -10, 0]),
        (-5, 37, [-10, 0, 10, 20, 30, 40]),
        (0, 0, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (0, 2400, [0, 500, 1000, 1500, 2000, 2500]),
    ],
)
def test_nice_ticks_are_round_and_cover_zero_and_the_data(
    low: float, high: float, ticks: list[float]
) -> None:
    assert nice_ticks(low, high) == ticks


def test_numbers_and_shares_read_plainly() -> None:
    assert [number(v) for v in (0, -0.0, 1234, 4.25, 4.5, 0.001, 2.5e9)] == [
        "0",
        "0",
        "1,234",
        "4.25",
        "4.5",
        "0.001",
        "2.5e+09",
    ]
    assert [percent(v) for v in (0, 0.456, 1)] == ["0%", "46%", "100%"]


def test_horizontal_bar_chart_prints_each_value() -> None:
    channels = ["Email", "Web chat", "WhatsApp", "SMS"]
    root = parse(bar_chart("Conversations per channel", channels, [120, 75, 37, 3]))
    desc = check_accessible(root, "Conversations per channel")
    assert desc == "Bar chart of 4 bars. Highest: Email, 120; lowest: SMS, 3."
    assert len(root.findall(f".//{SVG}rect[@class='chart-bar']")) == 4
    values = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-value"]
    assert values == ["120", "75", "37", "3"]


def test_vertical_bar_chart_with_a_percent_axis() -> None:
    rates = [0.05, 0.12, 0.08, 0.0]
    root = parse(
        bar_chart("SLA breaches", WEEKS[:4], rates, horizontal=False, value_format=percent)
    )
    check_accessible(root, "SLA breaches")
    axis = root.find(f"{SVG}g[@class='chart-axis chart-y-axis']")
    assert axis is not None
    assert [t.text for t in axis.iter(f"{SVG}text")] == ["0%", "5%", "10%", "15%"]
    assert len(root.findall(f".//{SVG}rect[@class='chart-bar']")) == 4


def test_negative_bars_go_left_of_zero() -> None:
    root = parse(bar_chart("Change", ["up", "down"], [10, -5]))
    up, down = root.findall(f".//{SVG}rect[@class='chart-bar']")
    assert float(down.get("x") or 0) < float(up.get("x") or 0)


def test_heat_map_prints_and_colours_every_cell() -> None:
    cohorts = ["2026-01", "2026-02", "2026-03"]
    months = ["Month 0", "Month 1", "Month 2"]
    cells = [[1.0, 0.42, 0.3], [1.0, None, 0.25], [1.0]]  # newest cohort: one month so far
    root = parse(heat_map("Retention", cohorts, months, cells))
    desc = check_accessible(root, "Retention")
    assert desc.startswith("Heat map of 3 rows by 3 columns, 6 with values.")
    rects = root.findall(f".//{SVG}rect[@class='chart-cell']")
    assert len(rects) == 6
    group = root.find(f"{SVG}g[@class='chart-cells']")
    assert group is not None
    assert [t.text for t in group.iter(f"{SVG}text")] == [
        "100%",
        "42%",
        "30%",
        "100%",
        "25%",
        "100%",
    ]
    assert heat_color(0) != heat_color(0.5) != heat_color(1)


@pytest.mark.parametrize("share", [i / 100 for i in range(101)])
def test_heat_map_text_contrasts_with_its_cell(share: float) -> None:
    fill = heat_color(share)
    assert contrast(fill, ink_on(fill)) >= 4.5


def test_hostile_and_accented_text_is_escaped() -> None:
    label = "\u017diemos i\u0161pardavimas"
    charts = [
        line_chart(HOSTILE, [label, HOSTILE], [Series(HOSTILE, [1, 2]), Series(label, [2, 1])]),
        bar_chart(HOSTILE, [label, HOSTILE], [1, 2], unit=HOSTILE),
        bar_chart(HOSTILE, [label, HOSTILE], [1, 2], horizontal=False),
        heat_map(HOSTILE, [label, HOSTILE], [HOSTILE], [[0.5], [0.1]]),
    ]
    for markup in charts:
        assert "<script" not in str(markup)
        root = parse(markup)
        assert root.find(f".//{SVG}script") is None
        assert root.find(".//script") is None
        check_accessible(root, HOSTILE)
        assert label in texts(root)
    table = data_table(HOSTILE, [HOSTILE, "Share"], [[label, "12%"], [HOSTILE, "3%"]])
    assert "<script" not in str(table)
    assert parse_table(table).find(".//script") is None


def test_characters_xml_cannot_carry_are_replaced() -> None:
    root = parse(bar_chart("bell\x07", ["nul\x00", "\ufffe"], [1, 2]))
    assert check_accessible(root, "bell\ufffd")


def parse_table(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    return ET.fromstring(str(markup))


def test_data_table_has_a_caption_and_headers() -> None:
    table = parse_table(
        data_table("Conversations per channel", ["Channel", "Count"], [["Email", "120"]])
    )
    assert table.tag == "table"
    caption = table.find("caption")
    assert caption is not None
    assert caption.text == "Conversations per channel"
    assert [(th.get("scope"), th.text) for th in table.iterfind("thead/tr/th")] == [
        ("col", "Channel"),
        ("col", "Count"),
    ]
    row = table.find("tbody/tr")
    assert row is not None
    assert [(cell.tag, cell.get("scope"), cell.text) for cell in row] == [
        ("th", "row", "Email"),
        ("td", None, "120"),
    ]


@pytest.mark.parametrize(
    "markup",
    [
        line_chart("Empty", [], []),
        line_chart("No labels", [], [Series("median", [])]),
        line_chart("All None", WEEKS[:3], [Series("median", [None, None, None])]),
        line_chart("Not numbers", ["a"], [Series("median", [float("nan")])]),
        bar_chart("Empty", [], []),
        bar_chart("All zero", ["Email", "SMS"], [0, 0]),
        heat_map("Empty", [], [], []),
        heat_map("All None", ["2026-01"], ["Month 0"], [[None]]),
        heat_map("No columns", ["2026-01"], [], [[]]),
    ],
)
def test_empty_data_says_so(markup: Markup) -> None:
    root = parse(markup)
    assert check_accessible(root, root.findtext(f"{SVG}title") or "") == NO_DATA
    assert NO_DATA in texts(root)


def test_a_line_of_zeros_is_data() -> None:
    # 0% of conversations breached the SLA is a result worth drawing, not an absence of data
    root = parse(line_chart("Breaches", WEEKS[:3], [Series("rate", [0, 0, 0])], unit="%"))
    assert NO_DATA not in texts(root)
    assert len(root.findall(f".//{SVG}polyline")) == 1


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        line_chart("t", WEEKS[:3], [Series("median", [1, 2])])
    with pytest.raises(ValueError, match="1 values for 2 labels"):
        bar_chart("t", ["a", "b"], [1])
    with pytest.raises(ValueError, match="more cells"):
        heat_map("t", ["a"], ["m0"], [[0.1, 0.2]])


def test_output_is_deterministic_and_ids_differ_between_charts() -> None:
    def build() -> list[str]:
        return [
            str(line_chart("t", WEEKS, [Series("a", [i / 3 for i in range(12)])])),
            str(bar_chart("t", ["a", "b"], [1 / 3, 2 / 3], horizontal=False)),
            str(heat_map("t", ["r"], ["c"], [[1 / 3]])),
        ]

    first, second = build(), build()
    assert first == second
    ids = {parse(Markup(svg)).get("aria-labelledby") for svg in first}
    assert len(ids) == 3


labels = st.text(max_size=30)
numbers = st.floats(allow_nan=False, allow_infinity=False)
maybe = st.none() | numbers


@settings(max_examples=150, deadline=None)
@given(
    title=labels,
    data=st.lists(st.tuples(labels, maybe, maybe), max_size=20),
    names=st.tuples(labels, labels),
    unit=st.text(max_size=5),
)
def test_any_line_chart_is_well_formed(
    title: str,
    data: list[tuple[str, float | None, float | None]],
    names: tuple[str, str],
    unit: str,
) -> None:
    series = [
        Series(names[0], [row[1] for row in data]),
        Series(names[1], [row[2] for row in data]),
    ]
    check_accessible(parse(line_chart(title, [row[0] for row in data], series, unit=unit)), title)


@settings(max_examples=150, deadline=None)
@given(
    title=labels,
    data=st.lists(st.tuples(labels, numbers), max_size=20),
    horizontal=st.booleans(),
)
def test_any_bar_chart_is_well_formed(
    title: str, data: list[tuple[str, float]], horizontal: bool
) -> None:
    chart = bar_chart(
        title, [row[0] for row in data], [row[1] for row in data], horizontal=horizontal
    )
    check_accessible(parse(chart), title)


@settings(max_examples=150, deadline=None)
@given(
    title=labels,
    columns=st.lists(labels, max_size=8),
    rows=st.lists(st.tuples(labels, st.lists(maybe, max_size=8)), max_size=8),
)
def test_any_heat_map_is_well_formed(
    title: str, columns: list[str], rows: list[tuple[str, list[float | None]]]
) -> None:
    cells = [values[: len(columns)] for _, values in rows]
    chart = heat_map(title, [row[0] for row in rows], columns, cells)
    check_accessible(parse(chart), title)


@given(caption=labels, header=st.lists(labels, max_size=4), rows=st.lists(st.lists(labels)))
def test_any_data_table_is_well_formed(
    caption: str, header: list[str], rows: list[list[str]]
) -> None:
    table = parse_table(data_table(caption, header, rows))
    assert table.findtext("caption") == as_parsed(caption)
    assert len(table.findall("tbody/tr")) == len(rows)
