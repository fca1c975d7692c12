"""Accepting what the gate held: a held run's whole listing, or a run's held prices.

The refresher takes the lease and publishes (``Refresher.accept``); this module decides what is
accepted and stores it through the one write step (write.py). Synchronous: a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pricing_service.domain import AcceptedFigure, RunStatus, utcnow
from pricing_service.errors import NothingToAccept

if TYPE_CHECKING:
    from pricing_service.domain import RunSummary, SnapshotInfo
    from pricing_service.write import SnapshotWriter


@dataclass(frozen=True, slots=True)
class Acceptance:
    run: RunSummary  # the run whose held listing or prices were applied
    accepted: tuple[str, ...]  # model ids whose held prices were applied ("*": the whole run)
    snapshot: SnapshotInfo


def accept(
    writer: SnapshotWriter,
    run_id: int,
    by: str,
    model_ids: tuple[str, ...],
    figure: str = AcceptedFigure.PROPOSED.value,
) -> Acceptance:
    """Apply what the gate held, recorded with ``by``, the time and the figure.

    A held run is applied as if it had passed the run gate; its prices still pass the per-model
    checks, so a doubtful figure inside it is held again (under this run) and needs its own
    acceptance. Otherwise the run's open held prices (all, or ``model_ids``) are applied as
    proposed, or (``figure="second_source"``, prices held for a second-source disagreement
    only) at the second source's figures.
    """
    repository = writer.repository
    run = repository.get_run(run_id)
    if run is None:
        raise NothingToAccept(f"run {run_id} does not exist")
    now = utcnow()
    if run.status is RunStatus.HELD:
        if model_ids or figure != AcceptedFigure.PROPOSED.value:
            raise NothingToAccept(
                f"run {run_id} is held as a whole: accept the run, without model ids or a figure"
            )
        if run_id not in {r.id for r in repository.pending_held_runs()}:
            raise NothingToAccept(f"run {run_id} was superseded by a later applied run")
        proposal = repository.held_proposal(run_id)
        if proposal is None:
            raise NothingToAccept(f"run {run_id} kept no listing to apply")
        listing, source = proposal
        snapshot, _ = writer.store_listing(
            listing,
            run_id=run_id,
            source=source,
            planned_at=now,
            fetched_at=run.finished_at or now,
            finished_at=now,
            expect_status=RunStatus.HELD,
            accepted_by=by,
        )
        return Acceptance(run=run, accepted=("*",), snapshot=snapshot)
    proposals = repository.held_proposals(run_id, model_ids, figure)
    if not proposals:
        named = f" for {', '.join(model_ids)}" if model_ids else ""
        if figure != AcceptedFigure.PROPOSED.value:
            named += " with a second-source figure"
        raise NothingToAccept(f"run {run_id} has no held price{named} waiting for acceptance")
    missing = sorted(set(model_ids) - {p.model_id for p in proposals})
    if missing:
        raise NothingToAccept(f"run {run_id} holds no price for {', '.join(missing)}")
    snapshot = writer.store_accepted(proposals, by=by, figure=figure, now=now)
    accepted = tuple(sorted(p.model_id for p in proposals))
    return Acceptance(run=run, accepted=accepted, snapshot=snapshot)
