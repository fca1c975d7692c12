"""Ids clients asked for that nothing resolves (``?ids=``, the estimates), counted per process
for the debug sample and the metrics; bounded. Pure: no I/O."""

from __future__ import annotations

MAX_MODEL_ID_LENGTH = 200
MAX_UNKNOWN_IDS = 200
UNKNOWN_OTHER = "(other)"


class UnknownIds:
    """Ids clients asked for that nothing resolves, with counts; bounded.

    At most ``max_ids`` distinct ids are kept (each cut to MAX_MODEL_ID_LENGTH characters);
    once full, further new ids are counted together under UNKNOWN_OTHER. Per process: with
    several workers each keeps its own, and the metric adds them up.
    """

    def __init__(self, max_ids: int = MAX_UNKNOWN_IDS) -> None:
        self.max_ids = max_ids
        self._counts: dict[str, int] = {}
        self.other = 0

    def add(self, model_id: str) -> str:
        """Count one ask; returns the name it was counted under (the id, or UNKNOWN_OTHER)."""
        key = model_id.strip()[:MAX_MODEL_ID_LENGTH]
        if key in self._counts:
            self._counts[key] += 1
            return key
        if len(self._counts) < self.max_ids:
            self._counts[key] = 1
            return key
        self.other += 1
        return UNKNOWN_OTHER

    def snapshot(self) -> dict[str, int]:
        """Counts, most asked first (then by id); the overflow last under UNKNOWN_OTHER."""
        ordered = dict(sorted(self._counts.items(), key=lambda kv: (-kv[1], kv[0])))
        if self.other:
            ordered[UNKNOWN_OTHER] = self.other
        return ordered
