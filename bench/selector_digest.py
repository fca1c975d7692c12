"""Digests of every selector answer on the recorded snapshot: compare before and after a move.

Renders each answer the read path can give from a dataset (every view x category x local x
stale, ``?ids=`` lookups of every spelling one by one and in batches, the price map, GET and
POST /estimate, GET /local, and the dataset's own reads: status, stored id, curated_in, counts)
over three datasets built from the recorded PricePerToken listing (2026-04-29) and ``catalog/``,
and records sha256 of each body with its ETag (and the gzip ETag where the route gzips), as the
service renders them (``replies.render``). Errors (400s) are recorded by their message.

    python -m bench.selector_digest --write before.json   # before moving code
    python -m bench.selector_digest --compare before.json # after: exit 1 on any difference

Not a test (no digest is pinned in the repository): a change that means to alter the answers
would have to regenerate a pinned file, and one that does not must leave every digest alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pricing_service.catalog import load_catalog
from pricing_service.curation import SelectorDataset
from pricing_service.currency import COP
from pricing_service.domain import HeldPrice, HoldReason, SnapshotInfo, SnapshotSource, View
from pricing_service.errors import InvalidRequest
from pricing_service.listings.pricepertoken_rows import normalize_listing
from pricing_service.replies import render
from pricing_service.second_source import second_source
from pricing_service.space import local_space
from pricing_service.usage import estimate_body, read_usage

if TYPE_CHECKING:
    from collections.abc import Callable

    from pricing_service.domain import Catalog, ModelPrice

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "tests" / "fixtures" / "pricepertoken" / "2026-04-29"
DEPLOYMENT_IDS = ROOT / "tests" / "fixtures" / "cognitia" / "deployment_ids.json"
FETCHED_AT = datetime(2026, 4, 29, 8, 14, tzinfo=UTC)
TTL = 12 * 3600
FRESH = FETCHED_AT + timedelta(minutes=30)
STALE = FETCHED_AT + timedelta(hours=13)
ODD_IDS = (
    "",
    "  GPT-4o  ",
    "openai/gpt-4o",
    "OpenAI/GPT-4O",
    "cognitia_llm_unheard_of",
    "llama3:8b",
    "qwen2.5:7b-instruct",
    "totally-unknown-model-x",
    "someone/totally-unknown-model-y",
    "dall-e-3",
    "text-embedding-3-small",
    "whisper-1",
    "tts-1",
    "gpt-4-1106-preview",
    "claude-3-5-sonnet-20240620",
    "anthropic/claude-3-5-sonnet-20240620",
    "google/gemini-1.5-pro",
)
USAGES = (
    ({"prompt_tokens": 1200, "completion_tokens": 300}, None),
    (
        {
            "input_tokens": 250_000,
            "output_tokens": 4_000,
            "cache_read_input_tokens": 1_000,
            "cache_creation_input_tokens": 500,
        },
        None,
    ),
)


def _prices() -> tuple[ModelPrice, ...]:
    rows = json.loads((RECORDING / "get_all_models.json").read_text())
    details = {d["slug"]: d for d in json.loads((RECORDING / "get_model.json").read_text())}
    return normalize_listing(rows, details).prices


def _varied(prices: tuple[ModelPrice, ...]) -> tuple[ModelPrice, ...]:
    """The recorded prices with what a live snapshot also holds: held and delisted models,
    and the second source's models the upstream does not list."""
    changed = []
    for n, price in enumerate(prices):
        if n % 17 == 3:
            price = dataclasses.replace(
                price,
                held=HeldPrice(
                    model_id=price.model_id,
                    run_id=40 + n,
                    reason=HoldReason.RATIO,
                    detail=f"input moved x12 against {price.input_usd_per_million}",
                    proposed_input_usd_per_million=Decimal("12.5"),
                    proposed_output_usd_per_million=None,
                    accepted_input_usd_per_million=price.input_usd_per_million,
                    accepted_output_usd_per_million=price.output_usd_per_million,
                    held_at=FETCHED_AT,
                ),
            )
            if n % 34 == 3:
                price = price.without_prices()
        if n % 23 == 5:
            price = dataclasses.replace(
                price, listed=False, delisted_at=FETCHED_AT - timedelta(days=2, minutes=n)
            )
        changed.append(price)
    return (*changed, *second_source().unlisted(prices, at=FETCHED_AT))


def _datasets(catalog: Catalog) -> dict[str, SelectorDataset]:
    prices = _prices()
    varied = _varied(prices)

    def dataset(
        source: SnapshotSource,
        rows: tuple[ModelPrice, ...],
        rate: str,
        rate_source: str,
        **more: Any,
    ) -> SelectorDataset:
        return SelectorDataset(
            snapshot=SnapshotInfo(
                id=7, fetched_at=FETCHED_AT, source=source, model_count=len(rows)
            ),
            prices=rows,
            catalog=catalog,
            rate=Decimal(rate),
            rate_source=rate_source,
            currency=COP,
            **more,
        )

    upstream, seed = SnapshotSource.PRICEPERTOKEN, SnapshotSource.SEED
    valid = {"rate_valid_from": date(2026, 4, 29), "rate_valid_to": date(2026, 4, 29)}
    return {
        "recorded": dataset(upstream, prices, "4000", "fixed: test"),
        "live": dataset(upstream, varied, "3912.4731", "trm", matcher=second_source(), **valid),
        "seed": dataset(seed, varied, "0.5", "fixed: tiny", matcher=second_source()),
    }


def _hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class Digests:
    def __init__(self) -> None:
        self.found: dict[str, str] = {}

    def answer(self, name: str, make: Callable[[], Any], *, gzip: bool) -> None:
        """An answer as the service sends it: body sha256, ETag, gzip ETag; or its 400."""
        try:
            rendered = render(make(), compress=gzip)
        except InvalidRequest as error:
            self.found[name] = "400 " + str(error)
            return
        gz = f" gz={_hash(rendered.gzip)} {rendered.gzip_etag}" if rendered.gzip else ""
        self.found[name] = f"{_hash(rendered.body)} {rendered.etag}{gz}"

    def value(self, name: str, value: Any) -> None:
        """A dataset read that is not an answer of its own (status, counts, ids)."""
        self.found[name] = _hash(repr(value).encode())


def digest_all() -> dict[str, str]:
    out = Digests()
    deployment = json.loads(DEPLOYMENT_IDS.read_text())["ids"]
    catalog = load_catalog(ROOT / "catalog")
    for label, dataset in _datasets(catalog).items():
        _digest(out, label, dataset, catalog, deployment)
    return out.found


def _digest(
    out: Digests, label: str, dataset: SelectorDataset, catalog: Catalog, deployment: list[str]
) -> None:
    categories = [*sorted(dataset.category_ids), "no-such-category"]
    for now_label, now in (("fresh", FRESH), ("stale", STALE)):
        for view in (*(v.value for v in View), "nope"):
            for category in (None, *categories):
                for local in (None, True, False):
                    name = f"{label}/{now_label}/models/{view}/{category}/{local}"
                    out.answer(
                        name,
                        partial(
                            dataset.render,
                            view=view,
                            category=category,
                            local=local,
                            now=now,
                            ttl_seconds=TTL,
                        ),
                        gzip=True,
                    )
        out.answer(
            f"{label}/{now_label}/prices",
            partial(dataset.price_map, now=now, ttl_seconds=TTL),
            gzip=True,
        )
    spellings = sorted(dataset.price_map(now=FRESH, ttl_seconds=TTL)["prices"])
    referenced = list(catalog.referenced_ids())
    probes = list(dict.fromkeys([*spellings, *deployment, *referenced, *ODD_IDS]))
    for model_id in probes:
        out.answer(
            f"{label}/ids/{model_id}",
            partial(dataset.lookup, [model_id], now=FRESH, ttl_seconds=TTL),
            gzip=False,
        )
        out.value(
            f"{label}/reads/{model_id}",
            (
                dataset.status_of(model_id),
                dataset.stored_model_id(model_id),
                dataset.is_unresolved(model_id),
                dataset.curated_in(model_id),
            ),
        )
    for start in range(0, len(probes), 100):
        batch = probes[start : start + 100]
        out.answer(
            f"{label}/ids-batch/{start}",
            partial(dataset.lookup, [*batch, *batch[:3]], now=STALE, ttl_seconds=TTL),
            gzip=False,
        )
    for model_id in [*deployment, *ODD_IDS, *spellings[::7]]:
        for tokens in ((1000, 500), (0, 0), (123_456, 7)):
            out.answer(
                f"{label}/estimate/{model_id}/{tokens}",
                partial(
                    dataset.estimate,
                    model_id,
                    input_tokens=tokens[0],
                    output_tokens=tokens[1],
                    now=FRESH,
                    ttl_seconds=TTL,
                ),
                gzip=False,
            )
        for n, (usage, usage_format) in enumerate(USAGES):

            def post(m: str = model_id, u: Any = usage, f: Any = usage_format) -> Any:
                found = dataset.lookup([m], now=FRESH, ttl_seconds=TTL)
                item = found["items"][0]
                tiers = second_source().long_context_tiers(item["provider"], m)
                return estimate_body(
                    item,
                    read_usage(u, f),
                    rate=dataset.rate,
                    local=dataset.currency,
                    currency=found["currency"],
                    snapshot=found["snapshot"],
                    tiers=tiers,
                )

            out.answer(f"{label}/post-estimate/{model_id}/{n}", post, gzip=False)
    out.value(
        f"{label}/dataset",
        (
            dataset.unmatched_catalog_ids(),
            dataset.price_status_counts(),
            dataset.category_counts(),
            sorted(dataset.category_ids),
            dataset.cache_id,
            dataset.currency_json(),
            dataset.rate,
            len(dataset.prices),
            dataset.is_stale(now=STALE, ttl_seconds=TTL),
        ),
    )
    out.answer(
        f"{label}/local",
        partial(
            local_space,
            catalog,
            rate=dataset.rate,
            currency=dataset.currency_json(),
            money=dataset.currency,
        ),
        gzip=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="record the digests in this JSON file")
    group.add_argument("--compare", type=Path, help="compare with digests recorded earlier")
    args = parser.parse_args()
    found = digest_all()
    if args.write is not None:
        args.write.write_text(json.dumps(found, indent=0, sort_keys=True))
        print(f"selector_digest: {len(found)} answers recorded in {args.write}")
        return 0
    recorded: dict[str, str] = json.loads(args.compare.read_text())
    differ = sorted(k for k in recorded.keys() & found.keys() if recorded[k] != found[k])
    missing = sorted(recorded.keys() - found.keys())
    extra = sorted(found.keys() - recorded.keys())
    for name in differ[:20]:
        print(f"differs: {name}")
    for name in missing[:20]:
        print(f"missing: {name}")
    for name in extra[:20]:
        print(f"new: {name}")
    same = len(recorded) - len(differ) - len(missing)
    print(
        f"selector_digest: {len(recorded)} recorded, {same} identical, {len(differ)} differ, "
        f"{len(missing)} missing, {len(extra)} new"
    )
    return 0 if not (differ or missing or extra) else 1


if __name__ == "__main__":
    sys.exit(main())
