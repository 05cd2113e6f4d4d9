"""Audio quality estimate: a simplified ITU-T G.107 E-model giving a MOS from RTT, jitter and loss.

The full E-model has dozens of inputs; network monitoring tools use the well-known simplification
of Cole & Rosenbluth ("Voice over IP performance monitoring", 2001), which keeps the terms the
network controls:

* effective one-way latency ``d = rtt/2 + 2*jitter + 10 ms`` (the jitter buffer holds about two
  jitter periods; 10 ms stands for packetisation/codec delay beyond the 20 ms frame);
* delay impairment ``Id = 0.024*d + 0.11*(d - 177.3)*H(d - 177.3)`` (``H`` the step function);
* equipment/loss impairment ``Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl + Bpl)`` (G.107 section 7.2)
  with, for Opus at voice bitrates, ``Ie = 0`` and ``Bpl = 20`` (Opus' packet loss concealment is
  robust; G.113 gives 10-25 for codecs with PLC -- we take the middle);
* ``R = 93.2 - Id - Ie_eff`` and ``MOS = 1 + 0.035 R + 7e-6 R (R - 60)(100 - R)`` for
  ``0 < R < 100`` (clamped to 1.0 .. 4.5).

Thresholds (G.107 Annex B user satisfaction bands, mapped to MOS): ``good`` >= 4.0 (R >= 80,
"satisfied"), ``fair`` >= 3.6 (R >= 70, "some users dissatisfied"), ``poor`` >= 3.1 (R >= 60,
"many users dissatisfied"), ``bad`` below.
"""

from __future__ import annotations

from typing import Literal

#: Equipment impairment of Opus (wideband voice, G.113-style value).
OPUS_IE = 0.0
#: Packet-loss robustness factor of Opus with PLC.
OPUS_BPL = 20.0

MOS_GOOD = 4.0
MOS_FAIR = 3.6
MOS_POOR = 3.1

QualityBand = Literal["good", "fair", "poor", "bad"]


def r_factor(rtt_ms: float, jitter_ms: float, loss_percent: float) -> float:
    """The simplified E-model transmission rating R (0..93.2)."""
    d = max(0.0, rtt_ms) / 2.0 + 2.0 * max(0.0, jitter_ms) + 10.0
    delay_impairment = 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)
    ppl = min(100.0, max(0.0, loss_percent))
    loss_impairment = OPUS_IE + (95.0 - OPUS_IE) * ppl / (ppl + OPUS_BPL)
    return max(0.0, 93.2 - delay_impairment - loss_impairment)


def mos_from_r(r: float) -> float:
    """ITU-T G.107 Annex B: R -> MOS (conversational quality estimate)."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return max(1.0, min(4.5, 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)))


def estimate_mos(rtt_ms: float, jitter_ms: float, loss_percent: float) -> float:
    """MOS (1.0 .. 4.5, two decimals) for the given network figures."""
    return round(mos_from_r(r_factor(rtt_ms, jitter_ms, loss_percent)), 2)


def quality_band(mos: float) -> QualityBand:
    """The documented band a MOS falls into."""
    if mos >= MOS_GOOD:
        return "good"
    if mos >= MOS_FAIR:
        return "fair"
    if mos >= MOS_POOR:
        return "poor"
    return "bad"


__all__ = [
    "MOS_FAIR",
    "MOS_GOOD",
    "MOS_POOR",
    "OPUS_BPL",
    "OPUS_IE",
    "QualityBand",
    "estimate_mos",
    "mos_from_r",
    "quality_band",
    "r_factor",
]
