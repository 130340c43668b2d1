"""The journey model: proportions, determinism, realistic and valid fields. Pure: no I/O."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream.enrich import device_from_user_agent
from clickstream.ingest import validate_records
from clickstream.schema import FUNNEL_STEPS
from simulator.catalogue import CRAWLER_AGENTS, DEVICES, build_shop, zipf_weights
from simulator.config import (
    ConfigError,
    SimulatorConfig,
    config_from_dict,
    load_config,
)
from simulator.journeys import SimEvent, Simulation, natural_cycle, plan_session
from simulator.runner import RunOptions, default_start

START = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def take(sim: Simulation, n: int) -> list[SimEvent]:
    return list(itertools.islice(iter(sim), n))


@pytest.fixture(scope="module")
def whole_run() -> list[SimEvent]:
    return take(Simulation(SimulatorConfig(), seed=42, start=START, users=50, rate=20), 60_000)


@pytest.fixture(scope="module")
def big_run(whole_run: list[SimEvent]) -> list[SimEvent]:
    """The people's events (crawlers have their own test)."""
    return [event for event in whole_run if event.journey != "crawler"]


def test_a_share_of_sessions_are_crawlers_with_nothing_but_a_crawler_agent(whole_run):
    starts = [event for event in whole_run if event.session_start]
    crawlers = [event for event in whole_run if event.journey == "crawler"]
    share = sum(event.journey == "crawler" for event in starts) / len(starts)
    assert share == pytest.approx(SimulatorConfig().population.bot_share, abs=0.01)
    assert {event.record["user_agent"] for event in crawlers} <= set(CRAWLER_AGENTS.items)
    assert all(
        set(event.record) == {"event_id", "event_type", "session_id", "timestamp", "page",
                              "page_url", "user_agent"}
        for event in crawlers
    )  # fmt: skip


def test_campaign_visits_land_with_their_tags_in_the_url(big_run):
    landings = [
        e.record
        for e in big_run
        if e.session_start and "utm_source=" in e.record.get("page_url", "")
    ]
    assert landings and all(
        record["referrer"] in {"https://mail.google.com/", "https://www.googleadservices.com/"}
        for record in landings
    )


def sessions_of(events: list[SimEvent]) -> dict[str, list[SimEvent]]:
    sessions: dict[str, list[SimEvent]] = defaultdict(list)
    for event in events:
        sessions[event.session_id].append(event)
    return sessions


def complete_sessions(events: list[SimEvent]) -> dict[str, list[SimEvent]]:
    """Sessions that started in the sample and ended well before its end."""
    horizon = events[-1].offset_ms - 600_000
    return {
        sid: evs
        for sid, evs in sessions_of(events).items()
        if evs[0].session_start and evs[-1].offset_ms < horizon
    }


# --- proportions -----------------------------------------------------------------------------


def test_journey_mix_matches_the_configuration(big_run):
    starts = Counter(event.journey for event in big_run if event.session_start)
    total = sum(starts.values())
    assert total > 10_000
    measured = {name: count / total for name, count in starts.items()}
    expected = {"browser": 0.60, "researcher": 0.20, "buyer": 0.15, "quick_buyer": 0.05}
    for name, share in expected.items():
        assert measured[name] == pytest.approx(share, abs=0.015), measured


def test_returning_visitors_share(big_run):
    first = [event for event in big_run if event.session_start]
    returning = sum(event.record["user_type"] == "returning" for event in first) / len(first)
    assert returning == pytest.approx(0.35, abs=0.015)


def test_funnel_shape_follows_from_the_journeys(big_run):
    sessions = complete_sessions(big_run)
    steps = dict.fromkeys(FUNNEL_STEPS, 0)
    for evs in sessions.values():
        for step in {e.event_type for e in evs} & set(FUNNEL_STEPS):
            steps[step] += 1
    total = len(sessions)
    assert steps["page_view"] == total  # every session starts with a page view
    # buyers (15%) and quick buyers (5%) all buy with the default step probabilities
    assert steps["purchase"] / total == pytest.approx(0.20, abs=0.015)
    assert steps["checkout"] == steps["purchase"]
    # cart: buyers, quick buyers without "buy now" (40% of 5%), researchers adding (35% of 20%)
    assert steps["add_to_cart"] / total == pytest.approx(0.15 + 0.02 + 0.07, abs=0.015)


def test_target_rate_is_met_in_simulated_time(big_run):
    span = (big_run[-1].offset_ms - big_run[0].offset_ms) / 1000
    assert len(big_run) / span == pytest.approx(20.0, rel=0.05)


def test_rate_zero_uses_natural_think_times():
    sim = Simulation(SimulatorConfig(), seed=3, start=START, users=20, rate=0)
    assert sim.scale == 1.0
    events = take(sim, 5000)
    natural = 20 * natural_cycle(SimulatorConfig()).rate
    rate = len(events) / (events[-1].offset_ms / 1000)
    assert rate == pytest.approx(natural, rel=0.15)


def test_product_popularity_is_skewed(big_run):
    views = Counter(
        e.record["product_id"]
        for e in big_run
        if e.event_type == "page_view" and "product_id" in e.record
    )
    ranked = [count for _, count in views.most_common()]
    assert ranked[0] > 8 * ranked[len(ranked) // 2]  # head far above the median: Zipf-like
    assert len(ranked) > 100  # and a long tail: most of the catalogue gets some views


def test_zipf_weights():
    assert zipf_weights(4, 1.0) == [1.0, 0.5, pytest.approx(1 / 3), 0.25]


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_and_start_give_identical_events():
    one = take(Simulation(SimulatorConfig(), seed=7, start=START, users=30, rate=25), 3000)
    two = take(Simulation(SimulatorConfig(), seed=7, start=START, users=30, rate=25), 3000)
    assert [json.dumps(e.record, sort_keys=True) for e in one] == [
        json.dumps(e.record, sort_keys=True) for e in two
    ]


def test_another_start_gives_new_ids_and_the_same_behaviour():
    one = take(Simulation(SimulatorConfig(), seed=7, start=START, users=30, rate=25), 500)
    later = START + timedelta(hours=1)
    two = take(Simulation(SimulatorConfig(), seed=7, start=later, users=30, rate=25), 500)
    assert not {e.event_id for e in one} & {e.event_id for e in two}
    assert [(e.event_type, e.record["page"]) for e in one] == [
        (e.event_type, e.record["page"]) for e in two
    ]
    assert [e.offset_ms for e in one] == [e.offset_ms for e in two]


def test_no_pause_inside_a_session_reaches_the_visit_timeout():
    # 2,000 users making 1 event/s between them: think times scaled ~80x, then capped
    sim = Simulation(SimulatorConfig(), seed=4, start=START, users=2000, rate=1)
    assert sim.scale > 50
    events = take(sim, 3000)
    gaps = [
        later.offset_ms - earlier.offset_ms
        for evs in sessions_of(events).values()
        for earlier, later in itertools.pairwise(evs)
    ]
    assert max(gaps) <= 20 * 60 * 1000
    assert max(gaps) > 10 * 60 * 1000  # the cap, not short think times, is what holds


def test_another_seed_gives_other_events():
    one = take(Simulation(SimulatorConfig(), seed=1, start=START), 200)
    two = take(Simulation(SimulatorConfig(), seed=2, start=START), 200)
    assert [e.record["page"] for e in one] != [e.record["page"] for e in two]


# --- fields ----------------------------------------------------------------------------------


def test_every_device_profile_matches_its_user_agent():
    for profile in DEVICES.items:
        parsed = device_from_user_agent(profile.user_agent)
        assert (parsed.device_type, parsed.platform, parsed.browser) == (
            profile.device_type,
            profile.platform,
            profile.browser,
        ), profile.user_agent


def test_device_mix_is_realistic(big_run):
    first = [e for e in big_run if e.session_start]
    mix = Counter(e.record["device"]["device_type"] for e in first)
    total = sum(mix.values())
    assert mix["mobile"] / total == pytest.approx(0.45, abs=0.03)
    assert mix["desktop"] / total == pytest.approx(0.46, abs=0.03)
    assert mix["tablet"] / total == pytest.approx(0.09, abs=0.02)


def test_records_use_the_canonical_fields_and_formats(big_run):
    for event in big_run[:5000]:
        record = event.record
        assert UUID4.match(record["event_id"])
        assert UUID4.match(record["session_id"])
        assert ISO_Z.match(record["timestamp"])
        assert record["user_type"] in {"new", "returning"}
        assert record["page"].startswith("/")
        parsed = device_from_user_agent(record["user_agent"])
        assert parsed.model_dump() == record["device"]
        assert set(record["location"]) == {"country", "city"}
        assert ("value" in record) == (record["event_type"] == "purchase")
        if record["event_type"] == "purchase":
            assert record["value"] > 0
            assert record["properties"]["order_id"].startswith("ord-")


def test_records_are_accepted_unchanged_by_the_api_validation(big_run):
    records = [event.record for event in big_run[:2000]]
    batch = validate_records(records, received_at=START + timedelta(hours=2))
    assert not batch.errors
    for (index, event), record in zip(batch.events, records, strict=True):
        assert event.event_id == record["event_id"], index
        assert event.event_type == record["event_type"]
        assert event.page == record["page"]
        assert event.device.model_dump() == record["device"]
        assert event.timestamp == datetime.fromisoformat(record["timestamp"])


def test_stream_is_time_ordered_and_starts_at_start(big_run):
    offsets = [event.offset_ms for event in big_run]
    assert offsets == sorted(offsets)
    assert big_run[0].record["timestamp"] >= "2026-11-24T02:00:00.000Z"
    assert datetime.fromisoformat(big_run[-1].record["timestamp"]) == START + timedelta(
        milliseconds=big_run[-1].offset_ms
    )


def test_visitors_keep_their_device_and_place_and_are_never_in_two_sessions(big_run):
    profile: dict[str, tuple] = {}
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for sid, evs in sessions_of(big_run).items():
        record = evs[0].record
        key = (record["user_agent"], record["location"]["country"], record["location"]["city"])
        assert profile.setdefault(record["user_id"], key) == key
        spans[record["user_id"]].append((evs[0].offset_ms, evs[-1].offset_ms))
        assert {e.record["user_id"] for e in evs} == {record["user_id"]}, sid
    revisits = 0
    for intervals in spans.values():
        intervals.sort()
        revisits += len(intervals) - 1
        for (_, end), (begin, _) in itertools.pairwise(intervals):
            assert begin > end
    assert revisits > 1000  # visitors do come back within a run


def test_referrers_chain_like_a_browser(big_run):
    for evs in list(complete_sessions(big_run).values())[:2000]:
        first = evs[0].record
        assert first["event_type"] == "page_view"
        assert not first.get("referrer", "").startswith("https://shop.example.com")
        for _previous, current in itertools.pairwise(evs):
            if current.event_type == "page_view":
                assert current.record["referrer"].startswith("https://shop.example.com/")


# --- journeys --------------------------------------------------------------------------------


def plans(journey: str, n: int = 400, config: SimulatorConfig | None = None):
    config = config or SimulatorConfig()
    shop = build_shop(config.catalogue)
    rng, ids = random.Random(11), random.Random(12)
    return [plan_session(journey, config, shop, rng, ids) for _ in range(n)]


def test_browsers_only_look():
    for steps in plans("browser"):
        assert {s.event_type for s in steps} <= {"page_view", "click"}
        assert steps[0].event_type == "page_view"
        assert (
            sum(s.event_type == "page_view" for s in steps) <= SimulatorConfig().browser.max_pages
        )


def test_researchers_search_compare_and_never_buy():
    added = 0
    for steps in plans("researcher", 1000):
        types = [s.event_type for s in steps]
        assert "search" in types
        assert sum(s.event_type == "page_view" and s.product_id is not None for s in steps) >= 2
        assert not {"checkout", "purchase"} & set(types)
        added += "add_to_cart" in types
    assert added / 1000 == pytest.approx(0.35, abs=0.04)


def test_buyers_walk_the_whole_funnel_in_order():
    for steps in plans("buyer"):
        types = [s.event_type for s in steps]
        positions = [types.index(step) for step in FUNNEL_STEPS]
        assert positions == sorted(positions)
        purchase = steps[-1]
        assert purchase.event_type == "purchase"
        carted = [s for s in steps if s.event_type == "add_to_cart"]
        expected = sum(s.properties["price"] * s.properties["quantity"] for s in carted)
        assert purchase.value == pytest.approx(round(expected, 2))
        assert purchase.properties["items"] == sum(s.properties["quantity"] for s in carted)


def test_quick_buyers_go_straight_from_a_product_page_to_purchase():
    buy_now = 0
    for steps in plans("quick_buyer"):
        assert steps[0].event_type == "page_view" and steps[0].product_id is not None
        assert [s.event_type for s in steps][-2:] == ["checkout", "purchase"]
        assert len(steps) <= 4
        buy_now += "add_to_cart" not in {s.event_type for s in steps}
    assert buy_now / 400 == pytest.approx(0.6, abs=0.07)


def test_step_probabilities_are_configurable():
    config = config_from_dict({"buyer": {"checkout": 0.0}, "researcher": {"add_to_cart": 1.0}})
    assert all("checkout" not in {s.event_type for s in p} for p in plans("buyer", 100, config))
    assert all("add_to_cart" in {s.event_type for s in p} for p in plans("researcher", 100, config))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    users=st.integers(1, 40),
    rate=st.sampled_from([0.0, 1.0, 20.0, 500.0]),
)
def test_any_seed_gives_valid_well_formed_sessions(seed, users, rate):
    events = take(
        Simulation(SimulatorConfig(), seed=seed, start=START, users=users, rate=rate), 400
    )
    assert not validate_records([e.record for e in events], received_at=START).errors
    assert len({e.event_id for e in events}) == len(events)
    for evs in sessions_of(events).values():
        stamps = [e.record["timestamp"] for e in evs]
        assert stamps == sorted(stamps)
        if evs[0].session_start:
            assert evs[0].event_type == "page_view"
        for event in evs:
            if event.event_type == "purchase":
                assert {"checkout"} <= {e.event_type for e in evs}


# --- configuration ---------------------------------------------------------------------------


def test_config_file_overrides_the_defaults(tmp_path):
    path = tmp_path / "sim.json"
    path.write_text(
        json.dumps(
            {
                "mix": {"browser": 0, "buyer": 1, "researcher": 0, "quick_buyer": 0},
                "catalogue": {"products": 30},
            }
        )
    )
    config = load_config(path)
    assert config.mix.buyer == 1.0 and config.catalogue.products == 30
    events = take(Simulation(config, seed=1, start=START, users=10, rate=50), 2000)
    assert {e.journey for e in events} - {"crawler"} == {"buyer"}
    assert len({e.record.get("product_id") for e in events} - {None}) <= 30


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mix": {"shopper": 1}}, "unknown setting"),
        ({"buyer": {"checkout": 1.5}}, "not within"),
        ({"catalogue": {"products": "many"}}, "expected int"),
        ({"researcher": {"min_searches": 4, "max_searches": 2}}, "min_searches"),
        ({"mix": {"browser": 0, "researcher": 0, "buyer": 0, "quick_buyer": 0}}, "not all zero"),
        ({"mix": 3}, "expected a JSON object"),
    ],
)
def test_bad_config_is_an_error(values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(values)


def test_default_start():
    now = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)
    exact = now.replace(microsecond=123000)
    assert default_start(RunOptions(duration=60), 20.0, now) == exact
    backfill = RunOptions(duration=60, speedup=60)
    assert default_start(backfill, 20.0, now) == exact - timedelta(hours=1)
    flat = RunOptions(flat_out=True, max_events=20_000)
    assert default_start(flat, 20.0, now) == exact - timedelta(seconds=1000)
    assert default_start(RunOptions(rate=0, duration=5), 2.0, now) == exact  # unknown span
