"""Counters and histograms as plain numbers, for series only the trio thread touches.

``prometheus_client``'s children take a lock per increment (a histogram
observation two): with them, metrics on cost 7-9 % of a cached GET's server
CPU. Series that one thread both observes and renders need no lock, so these
keep plain ints and floats and build the same families at scrape time (the
output is line for line ``prometheus_client``'s: ``tests/telemetry/test_hot_series.py``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ("HotCounter", "HotHistogram")


class HotCounter(Collector):
    """A labelled counter as plain ints, for the trio thread's hot path (see :mod:`._metrics`)."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self._cells: dict[tuple[str, ...], list[int]] = {}

    def child(self, *values: str) -> list[int]:
        """The one-int cell of ``values``: ``cell[0] += 1`` counts."""
        cell = self._cells.get(values)
        if cell is None:
            cell = self._cells[values] = [0]
        return cell

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, cell in self._cells.items():
            family.add_metric(list(values), cell[0])
        yield family


class HotHistogram(Collector):
    """A labelled histogram as plain numbers, for the trio thread's hot path (see :mod:`._metrics`).

    A child is a list of one count per bucket (the ``+Inf`` one last) and
    the sum: an observation of ``v`` adds 1 at ``bisect_left(buckets, v)``
    (the first bound ``>= v``, as ``le`` means) and ``v`` to the sum.
    """

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self.buckets = tuple(buckets)
        # prometheus_client's own spelling of bounds ("0.001", "1.0"); untyped there.
        self._les = [
            floatToGoString(b)  # type: ignore[no-untyped-call]
            for b in self.buckets
        ] + ["+Inf"]
        self._series: dict[tuple[str, ...], list[float]] = {}
        if not self.labels:  # an unlabelled histogram shows from the start, as prometheus_client's
            self.child()

    def child(self, *values: str) -> list[float]:
        """The counts per bucket and the sum of ``values`` (see the class)."""
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = [0] * (len(self.buckets) + 1) + [0.0]
        return series

    def observe(self, series: list[float], seconds: float) -> None:
        """Count ``seconds`` in ``series`` (a :meth:`child`)."""
        series[bisect_left(self.buckets, seconds)] += 1
        series[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, series in self._series.items():
            total, cumulative = 0, []
            for le, n in zip(self._les, series[:-1], strict=True):
                total += int(n)
                cumulative.append((le, total))
            family.add_metric(list(values), cumulative, series[-1])
        yield family
