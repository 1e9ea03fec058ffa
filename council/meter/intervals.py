"""One interval type for every measured estimate: an experiment metric's mean with its bootstrap
or t interval (the meter, ``council.meter.stats`` and ``inference``) and the assistant axis's
held-out AUC with its score interval (``council.meter.activations.stats``).

Only the meter makes one (the activation backend records activations; the axis measured from
them is the meter's), so it lives here. It reads and writes the meter's JSON form (``mean``,
``ci95``, ``n``, ``method``, ``clusters`` where set), the form every report and
``summary.json`` holds;
``bounds_json()`` writes the named-bounds form an axis file stores (``estimate``, ``low``,
``high``, ...), and that form reads back too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, model_serializer, model_validator

DIGITS = 4  # what the JSON form rounds to


def _round(x: float | None, digits: int = DIGITS) -> float | None:
    return None if x is None else round(x, digits)


class Interval(BaseModel):
    """An estimate with its interval and how the interval was made (or why there is none).

    ``n`` counts the values; ``clusters`` counts the units of inference (questions) where the
    interval was made on cluster means, so a reader can see which count the interval rests on.
    An AUC's interval also says what it rests on: ``positives`` and ``negatives``."""

    model_config = ConfigDict(frozen=True)

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    method: str = ""
    clusters: int | None = None
    confidence: float = 0.95
    positives: int | None = None
    negatives: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _read_forms(cls, data: Any) -> Any:
        """The JSON forms as written: the meter's (``mean``, ``ci95``) and an axis file's
        (``estimate``); the field names themselves pass through."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "mean" in data or "ci95" in data:
            ci = data.pop("ci95", None) or (None, None)
            data.setdefault("value", data.pop("mean", None))
            data.setdefault("low", ci[0] if len(ci) == 2 else None)
            data.setdefault("high", ci[1] if len(ci) == 2 else None)
        elif "estimate" in data:
            data.setdefault("value", data.pop("estimate"))
            data.pop("held_out", None)  # an axis file's design note beside its interval
            if data.get("positives") is not None and data.get("negatives") is not None:
                data.setdefault("n", data["positives"] + data["negatives"])
        return data

    @property
    def ci95(self) -> tuple[float, float] | None:
        """The bounds, or ``None`` where the interval has none."""
        return None if self.low is None or self.high is None else (self.low, self.high)

    @model_serializer(mode="plain")
    def _json_form(self) -> dict[str, Any]:
        return self.json_fields()

    def json_fields(self) -> dict[str, Any]:
        """The meter's JSON form; subclasses that carry more extend it."""
        ci = None if self.ci95 is None else [_round(self.low), _round(self.high)]
        out = {"mean": _round(self.value), "ci95": ci, "n": self.n, "method": self.method}
        if self.clusters is not None:  # absent for unit-level intervals: old JSON is unchanged
            out["clusters"] = self.clusters
        return out

    def to_json(self) -> dict[str, Any]:
        return self.json_fields()

    def bounds_json(self) -> dict[str, Any]:
        """The named-bounds form an axis file stores its held-out AUC in."""
        return {
            "estimate": self.value,
            "low": self.low,
            "high": self.high,
            "method": self.method,
            "confidence": self.confidence,
            "positives": self.positives,
            "negatives": self.negatives,
        }
