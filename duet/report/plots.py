"""The report's plots: matplotlib figures rendered headless (the Agg canvas, no display, no
``pyplot`` global state) to PNG bytes, each returned with the numbers it shows.

Every plot has a title, labelled axes with units and a caption saying what was counted and
over which sample. PNGs carry no timestamp, so identical data gives identical bytes.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from duet.errors import DuetError
from duet.report.common import Figure

WIDTH, HEIGHT, DPI = 7.2, 3.3, 110
COLORS = ("#3366aa", "#dd7733", "#339955", "#bb3344", "#7755aa", "#888833", "#33aabb",
          "#aa5588", "#666666", "#55aa33", "#cc9922")  # fmt: skip


class PlottingUnavailable(DuetError):
    """matplotlib is not installed."""


def _figure(width: float = WIDTH, height: float = HEIGHT, ncols: int = 1, nrows: int = 1,
            **kwargs):  # fmt: skip
    try:
        from matplotlib.figure import Figure as MplFigure
    except ImportError as exc:
        raise PlottingUnavailable(
            "plots need matplotlib (pip install 'duet[report]', or make setup)"
        ) from exc
    fig = MplFigure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, **kwargs)
    for ax in np.ravel(axes):
        ax.grid(True, color="#e4e4e4", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.tick_params(labelsize=8)
    return fig, axes


def _plain(value: float, _pos=None) -> str:
    """Tick labels as plain numbers (1, 30, 2,000, 1,000,000), never 3×10⁰."""
    if value >= 1 or value == 0:
        return f"{value:,.0f}"
    return f"{value:g}"


def _linear(value: float, _pos=None) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def _ticks(ax) -> None:
    """Plain tick labels (thousands separated, never 3×10⁰) on every axis."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, ScalarFormatter

    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale == "linear" and isinstance(axis.get_major_formatter(), ScalarFormatter):
            axis.set_major_formatter(FuncFormatter(_linear))  # not category labels
        if scale in ("log", "symlog"):
            axis.set_major_formatter(FuncFormatter(_plain))
            lo, hi = ax.get_xlim() if axis is ax.xaxis else ax.get_ylim()
            decades = np.log10(max(hi, 1e-9) / max(lo, 1e-9)) if lo > 0 else 3
            if scale == "log" and decades < 1.5:
                axis.set_minor_locator(LogLocator(subs=(2, 3, 5)))
                axis.set_minor_formatter(FuncFormatter(_plain))
            else:
                axis.set_minor_formatter(NullFormatter())


def _integers(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return buf.getvalue()


def _label(ax, title: str | None, xlabel: str, ylabel: str) -> None:
    if title:
        ax.set_title(title, fontsize=9.5)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)


def _done(key: str, title: str, fig, caption: str, data: dict[str, Any]) -> Figure:
    fig.suptitle(title, fontsize=10.5, fontweight="bold")
    for ax in fig.axes:
        if ax.get_label() != "<colorbar>":
            _ticks(ax)
    return Figure(key, title, _png(fig), caption, data)


def log_bins(values: np.ndarray, per_decade: int = 12) -> np.ndarray:
    lo, hi = max(float(np.min(values)), 1.0), max(float(np.max(values)), 2.0)
    count = max(2, int(np.ceil(np.log10(hi / lo) * per_decade)) + 1)
    return np.unique(np.round(np.geomspace(lo, hi * 1.0001, count), 6))


def _histogram(ax, values, *, xlabel: str, ylabel: str, bins, log_x: bool, log_y: bool,
               marks: dict[str, float] | None, unit: str, title: str | None = None) -> dict:  # fmt: skip
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    whole = bool(len(values)) and bool(np.all(values == np.round(values)))
    per_value = False
    if isinstance(bins, int) and not log_x:
        bins = min(bins, max(8, len(values) // 3))
    if log_x and len(values):
        values = values[values > 0]
        if isinstance(bins, int):
            bins = log_bins(values)
            if whole:
                bins = np.append(np.unique(np.round(bins[:-1])), values.max() + 1) - 0.5
                per_value = True
    elif whole and isinstance(bins, int) and len(values):
        step = max(1.0, np.ceil((values.max() - values.min() + 1) / bins))
        bins = np.arange(values.min() - 0.5, values.max() + step, step)
    counts, edges = np.histogram(values, bins=bins) if len(values) else (np.zeros(0), np.zeros(1))
    heights = counts / np.maximum(1, np.round(np.diff(edges))) if per_value else counts
    if len(counts):
        ax.stairs(heights, edges, fill=True, color=COLORS[0], alpha=0.85)
    for i, (name, x) in enumerate((marks or {}).items()):
        ax.axvline(x, color=COLORS[1 + i], linestyle="--", linewidth=1.2,
                   label=f"{name} {x:,.4g}{' ' + unit if unit else ''}")  # fmt: skip
    if marks:
        ax.legend(fontsize=8, frameon=False)
    ax.set_xscale("log" if log_x else "linear")
    if log_y:
        ax.set_yscale("log" if per_value else "symlog", **({} if per_value else {"linthresh": 1}))
    if whole and not log_x:
        _integers(ax.xaxis)
    _label(ax, title, xlabel, f"{ylabel} per value (mean over the bin)" if per_value else ylabel)
    return {"bin_edges": edges.tolist(), "counts": counts.astype(int).tolist(),
            **({"marks": marks} if marks else {})}  # fmt: skip


def histogram(key: str, title: str, values, *, xlabel: str, ylabel: str, caption: str,
              bins: int | np.ndarray = 40, log_x: bool = False, log_y: bool = False,
              marks: dict[str, float] | None = None, unit: str = "") -> Figure:  # fmt: skip
    """How many ``values`` fall in each bin; ``marks`` draws labelled vertical lines (a
    median, a limit). Whole-number data get bins that hold whole numbers. With ``log_x`` the
    bins are log-spaced and, for whole numbers, the bar height is the mean count per value
    in the bin (a log-log degree plot), so wider bins do not look more frequent."""
    fig, ax = _figure()
    data = _histogram(ax, values, xlabel=xlabel, ylabel=ylabel, bins=bins, log_x=log_x,
                      log_y=log_y, marks=marks, unit=unit)  # fmt: skip
    return _done(key, title, fig, caption, data)


def histograms(key: str, title: str, panels: list[dict], *, caption: str) -> Figure:
    """Histograms side by side, one per ``{"title", "values", "xlabel", "ylabel"[, "marks",
    "bins"]}``, each on its own scale."""
    fig, axes = _figure(height=3.0, ncols=len(panels))
    data = {}
    for ax, p in zip(np.atleast_1d(axes), panels, strict=True):
        data[p["title"]] = _histogram(ax, p["values"], xlabel=p["xlabel"], ylabel=p["ylabel"],
                                      bins=p.get("bins", 30), log_x=False, log_y=False,
                                      marks=p.get("marks"), unit="", title=p["title"])  # fmt: skip
    return _done(key, title, fig, caption, data)


def bars(key: str, title: str, labels: list[str], values: list[float], *, xlabel: str,
         caption: str, annotate: str = "{:,.0f}", ylabel: str = "") -> Figure:  # fmt: skip
    """Horizontal bars, one per label, each annotated with its value."""
    height = max(1.6, 0.5 + 0.28 * len(labels))
    fig, ax = _figure(height=height)
    y = np.arange(len(labels))
    ax.barh(y, values, color=[COLORS[i % len(COLORS)] for i in range(len(labels))], height=0.65)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    top = max(values, default=0) or 1
    for yi, v in zip(y, values, strict=True):
        ax.text(v + top * 0.01, yi, annotate.format(v), va="center", fontsize=8)
    ax.set_xlim(0, top * 1.18)
    if all(float(v).is_integer() for v in values):
        _integers(ax.xaxis)
    ax.grid(axis="y", visible=False)
    _label(ax, None, xlabel, ylabel)
    return _done(key, title, fig, caption, {"labels": labels, "values": list(values)})


def grouped_bars(key: str, title: str, groups: list[str], series: dict[str, list[float]], *,
                 ylabel: str, caption: str, xlabel: str = "") -> Figure:  # fmt: skip
    """Vertical bars: one group per entry of ``groups``, one bar per series inside it."""
    fig, ax = _figure()
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name,
               color=COLORS[i % len(COLORS)])  # fmt: skip
    ax.set_xticks(x, groups, rotation=35 if len(groups) > 6 else 0, ha="right"
                  if len(groups) > 6 else "center", fontsize=8)  # fmt: skip
    ax.grid(axis="x", visible=False)
    if len(series) > 1:
        ax.legend(fontsize=8, frameon=False, ncols=min(4, len(series)))
    _label(ax, None, xlabel, ylabel)
    return _done(key, title, fig, caption, {"groups": groups, "series": series})


def columns(key: str, title: str, labels: list[str], values: list[float], *, xlabel: str,
            ylabel: str, caption: str) -> Figure:  # fmt: skip
    """Vertical bars, one per label, each annotated with its value."""
    fig, ax = _figure()
    x = np.arange(len(labels))
    ax.bar(x, values, color=COLORS[0], width=0.7)
    top = max(values, default=0) or 1
    positive = [v for v in values if v > 0]
    wide = bool(positive) and top > 100 * min(positive)
    for xi, v in zip(x, values, strict=True):
        ax.text(xi, v * 1.08 if wide else v + top * 0.01, f"{v:,.0f}", ha="center",
                va="bottom", fontsize=7.5)  # fmt: skip
    ax.set_xticks(x, labels, fontsize=8)
    if wide:  # counts over several decades: a log axis keeps the small bars visible
        ax.set_yscale("log")
        ax.set_ylim(0.7, top * 3)
        ylabel = f"{ylabel} (log scale)"
    else:
        ax.set_ylim(0, top * 1.12)
    ax.grid(axis="x", visible=False)
    _label(ax, None, xlabel, ylabel)
    return _done(key, title, fig, caption, {"labels": labels, "values": list(values)})


def lines(key: str, title: str, panels: list[dict], *, caption: str, xlabel: str,
          legend: str = "panel") -> Figure:  # fmt: skip
    """One panel per entry: ``{"ylabel", "series": {name: (x, y)}, "log_y", "percent",
    "reference": {name: y}}`` (reference values are drawn as dotted horizontal lines).
    ``legend="figure"`` draws one legend right of the panels (series shared by every panel)."""
    fig, axes = _figure(height=HEIGHT if len(panels) == 1 else 3.0, ncols=len(panels))
    data: list = []
    palette: dict[str, str] = {}
    handles: dict = {}
    for panel, ax in zip(panels, np.atleast_1d(axes), strict=True):
        series = panel["series"]
        for name, (x, y) in series.items():
            color = palette.setdefault(name, COLORS[len(palette) % len(COLORS)])
            (handles[name],) = ax.plot(x, y, marker="o" if len(x) <= 60 else None, markersize=3,
                                       linewidth=1.4, label=name, color=color)  # fmt: skip
        for j, (name, value) in enumerate(panel.get("reference", {}).items()):
            ax.axhline(value, linestyle=":", linewidth=1.3, color=COLORS[j % len(COLORS)],
                       label=name)  # fmt: skip
        if all(isinstance(v, int | np.integer) for x, _ in series.values() for v in x):
            _integers(ax.xaxis)
        if series and all(isinstance(v, int | np.integer) for _, y in series.values() for v in y):
            _integers(ax.yaxis)
        if panel.get("log_y"):
            ax.set_yscale("log")
        if panel.get("percent"):
            ax.set_ylim(0, 105)
        several = len(series) + len(panel.get("reference", {})) > 1
        if several and legend == "panel":
            ax.legend(fontsize=7.5, frameon=False, ncols=1 + len(series) // 6)
        _label(ax, panel.get("title"), xlabel, panel["ylabel"])
        data.append({"title": panel.get("title"), "ylabel": panel["ylabel"],
                     "series": {n: {"x": list(map(_num, x)), "y": list(map(_num, y))}
                                for n, (x, y) in series.items()},
                     "reference": panel.get("reference", {})})  # fmt: skip
    if legend == "figure":
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside right upper",
            fontsize=7.5,
            frameon=False,
        )
    return _done(key, title, fig, caption, {"panels": data})


def _num(v):
    v = v.item() if hasattr(v, "item") else v
    return round(v, 6) if isinstance(v, float) else v


def rank_frequency(key: str, title: str, counts: np.ndarray, *, xlabel: str, ylabel: str,
                   caption: str) -> Figure:  # fmt: skip
    """Counts sorted in decreasing order against their rank, on log-log axes (Zipf plot);
    the curve and report.json use ~400 log-spaced ranks."""
    counts = np.sort(np.asarray(counts))[::-1]
    points = np.unique(np.geomspace(1, max(1, len(counts)), 400).astype(np.int64)) - 1
    fig, ax = _figure()
    if len(counts):  # the curve through ~400 log-spaced ranks: the same line, drawn fast
        ax.loglog(points + 1, counts[points], color=COLORS[0], linewidth=1.6)
    _label(ax, None, xlabel, ylabel)
    return _done(key, title, fig, caption,
                 {"rank": (points + 1).tolist(), "count": counts[points].tolist()
                  if len(counts) else []})  # fmt: skip


def band_profiles(key: str, title: str, profiles: dict[str, tuple[np.ndarray, np.ndarray]], *,
                  units: dict[str, str], caption: str) -> Figure:  # fmt: skip
    """Per mel profile, the per-band mean as a line and ± one standard deviation as a band."""
    fig, axes = _figure(height=3.0, ncols=len(profiles))
    data = {}
    for i, (ax, (name, (mean, std))) in enumerate(zip(np.atleast_1d(axes), profiles.items(),
                                                      strict=True)):  # fmt: skip
        bands = np.arange(len(mean))
        ax.fill_between(bands, mean - std, mean + std, color=COLORS[i], alpha=0.25, linewidth=0,
                        label="± 1 std")  # fmt: skip
        ax.plot(bands, mean, color=COLORS[i], linewidth=1.5, label="mean")
        ax.legend(fontsize=7.5, frameon=False)
        _label(ax, f"mel-{name}", "mel band (low → high)", units[name])
        data[name] = {"mean": np.round(mean, 4).tolist(), "std": np.round(std, 4).tolist()}
    return _done(key, title, fig, caption, data)


def mel_patches(key: str, title: str, patches: list[dict], *, unit: str, caption: str) -> Figure:
    """Mel patches as images on one colour scale (one colour bar, in ``unit``): each
    ``{"label", "array" [frames, n_mels], "hop_s", "start_s"}``; time runs left to right in
    seconds, low bands at the bottom."""
    fig, axes = _figure(height=2.9, ncols=len(patches), sharey=True)
    arrays = [np.asarray(p["array"], dtype=np.float32) for p in patches]
    everything = np.concatenate([a.ravel() for a in arrays])
    vmin, vmax = (float(v) for v in np.percentile(everything, [0.5, 99.5]))
    data, image = [], None
    for i, (ax, p, array) in enumerate(zip(np.atleast_1d(axes), patches, arrays, strict=True)):
        extent = (p["start_s"], p["start_s"] + array.shape[0] * p["hop_s"], 0, array.shape[1])
        image = ax.imshow(array.T, origin="lower", aspect="auto", extent=extent, cmap="magma",
                          interpolation="nearest", vmin=vmin, vmax=vmax)  # fmt: skip
        ax.grid(False)
        _label(ax, p["label"], "time (s)", "mel band" if i == 0 else "")
        data.append({"label": p["label"], "frames": int(array.shape[0]),
                     "n_mels": int(array.shape[1]), "start_s": p["start_s"],
                     "min": float(array.min()), "max": float(array.max())})  # fmt: skip
    cbar = fig.colorbar(image, ax=list(np.atleast_1d(axes)), fraction=0.04, pad=0.02)
    cbar.set_label(unit, fontsize=8)
    cbar.ax.tick_params(labelsize=7.5)
    return _done(key, title, fig, caption, {"unit": unit, "scale": [vmin, vmax],
                                            "patches": data})  # fmt: skip


def count_panels(key: str, title: str, panels: list[tuple[str, dict[str, int]]], *,
                 xlabel: str, caption: str, top: int = 8) -> Figure:  # fmt: skip
    """Side-by-side horizontal bar panels, one per property: how many items have each value
    (the ``top`` most frequent values; the rest summed as "other")."""
    ncols = 2 if len(panels) > 2 else len(panels)
    nrows = -(-len(panels) // ncols)
    fig, axes = _figure(height=2.0 * nrows + 0.4, ncols=ncols, nrows=nrows)
    for ax in np.ravel(axes)[len(panels) :]:
        ax.set_visible(False)
    data = []
    for i, (ax, (name, counts)) in enumerate(zip(np.ravel(axes), panels, strict=False)):
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if len(ordered) > top:
            ordered = ordered[: top - 1] + [("other", sum(v for _, v in ordered[top - 1 :]))]
        labels, values = [k for k, _ in ordered], [v for _, v in ordered]
        y = np.arange(len(labels))
        ax.barh(y, values, color=COLORS[i % len(COLORS)], height=0.6)
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(values, default=1) * 1.3)
        for yi, v in zip(y, values, strict=True):
            ax.text(v, yi, f" {v:,}", va="center", fontsize=7.5)
        ax.grid(axis="y", visible=False)
        _label(ax, name, xlabel, "")
        data.append({"property": name, "labels": labels, "values": values})
    return _done(key, title, fig, caption, {"panels": data})


def overlaid_histograms(key: str, title: str, series: dict[str, list[float]], *, xlabel: str,
                        ylabel: str, caption: str, bins: int = 30) -> Figure:  # fmt: skip
    """Histograms of several series over shared bins, drawn as outlines."""
    everything = np.concatenate([np.asarray(v, np.float64) for v in series.values()])
    edges = np.histogram_bin_edges(everything, bins=bins)
    fig, ax = _figure()
    data = {"bin_edges": edges.tolist(), "counts": {}}
    for i, (name, values) in enumerate(series.items()):
        counts, _ = np.histogram(values, bins=edges)
        ax.stairs(counts, edges, color=COLORS[i % len(COLORS)], linewidth=1.6, label=name,
                  linestyle=("-", "--", ":", "-.")[i % 4])  # fmt: skip
        data["counts"][name] = counts.astype(int).tolist()
    ax.legend(fontsize=8, frameon=False)
    _label(ax, None, xlabel, ylabel)
    return _done(key, title, fig, caption, data)
