"""The shapes of Luminate's JSON answers (docs/api.md), as typed dictionaries: they are what
``json.loads`` gives, so a caller indexes them as plain dicts and a type checker knows the keys."""

from __future__ import annotations

from typing import Any, Dict, List, TypedDict

Dimensions = Dict[str, str]


class RangePoint(TypedDict):
    """A point of a ``range`` answer."""

    timestamp: int
    value: float
    dimensions: Dimensions


class BucketValue(TypedDict):
    """A bucket of an ``aggregate`` answer with ``interval``."""

    timestamp: int
    value: float
    count: int


class _AggregateGroupFields(TypedDict):
    groupKey: Dimensions
    value: float
    count: int


class AggregateGroup(_AggregateGroupFields, total=False):
    """A group of an ``aggregate`` answer; ``points`` only with ``interval``."""

    points: List[BucketValue]


class RatePoint(TypedDict):
    """A bucket of a ``rate`` answer."""

    timestamp: int
    rate: float


class RateGroup(TypedDict):
    """A group of a ``rate`` answer."""

    groupKey: Dimensions
    points: List[RatePoint]


class DimensionValue(TypedDict):
    """A value of a dimension and the points stored with it."""

    value: str
    points: int


class QueryAnswer(TypedDict):
    """An answer of ``POST /api/v1/query``; ``results`` holds :class:`RangePoint`,
    :class:`AggregateGroup`, :class:`RateGroup` or :class:`DimensionValue` by ``queryType``."""

    queryType: str
    results: List[Any]
    truncated: bool
    executionTimeMs: int


class DashboardSummary(TypedDict):
    """A line of ``GET /api/v1/dashboards``."""

    id: str
    title: str
    tags: List[str]
    version: int


class CardinalityDimension(TypedDict):
    """Distinct values of one dimension key."""

    key: str
    distinct_values: int


class MetricCardinality(TypedDict):
    """Series of one metric and distinct values per dimension key."""

    metric: str
    series: int
    dimensions: List[CardinalityDimension]
