"""The simplified E-model: documented anchors and bands."""

from __future__ import annotations

import pytest

from callops.orchestrator.call.quality import estimate_mos, mos_from_r, quality_band, r_factor


def test_perfect_loopback_network_is_rated_good() -> None:
    mos = estimate_mos(rtt_ms=1.0, jitter_ms=0.5, loss_percent=0.0)
    assert mos >= 4.3
    assert quality_band(mos) == "good"


def test_mos_falls_as_loss_rises() -> None:
    values = [estimate_mos(40, 5, loss) for loss in (0, 1, 3, 10, 30)]
    assert values == sorted(values, reverse=True)
    assert quality_band(estimate_mos(40, 5, 10)) in ("poor", "bad")


def test_long_delay_beyond_177_ms_costs_extra() -> None:
    short = r_factor(rtt_ms=300, jitter_ms=0, loss_percent=0)
    long = r_factor(rtt_ms=600, jitter_ms=0, loss_percent=0)
    # below the knee the slope is 0.024 per ms of one-way delay, beyond it 0.134
    assert short - long > 0.024 * 150 + 0.11 * 10


@pytest.mark.parametrize(("r", "mos"), [(0, 1.0), (-5, 1.0), (100, 4.5), (93.2, 4.41), (50, 2.58)])
def test_r_to_mos_follows_g107_annex_b(r: float, mos: float) -> None:
    assert round(mos_from_r(r), 2) == mos


@pytest.mark.parametrize(
    ("mos", "band"), [(4.0, "good"), (3.99, "fair"), (3.6, "fair"), (3.1, "poor"), (3.0, "bad")]
)
def test_bands_use_the_documented_thresholds(mos: float, band: str) -> None:
    assert quality_band(mos) == band
