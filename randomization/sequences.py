"""Randomisation sequences as pure functions: permuted blocks of random size, Pocock–Simon
minimisation, and the SHA-256 fingerprint that seals a generated list (SPEC.md §3.3).

Randomness. A sequence starts from a 256-bit seed drawn from :mod:`secrets` and
recorded with the sequence. Every random choice is then taken from a
deterministic stream: HMAC-SHA256 keyed with the seed over a label (the stratum,
or ``minimisation:<n>``) and a block counter (an HMAC-DRBG-like construction).
Why not ``random.Random(seed)``: the Mersenne Twister is not cryptographically
secure; its internal state can be rebuilt from 624 observed outputs, so anyone
who sees enough past allocations could predict the next ones. HMAC-SHA256 is a
pseudo-random function: without the seed, past outputs say nothing about future
ones, yet the same seed always gives the same list (reproducible for audit), and
each stratum gets its own independent stream (domain separation by label).
Integers are drawn by rejection sampling, so there is no modulo bias.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

SEED_BYTES = 32


def new_seed() -> str:
    """A fresh 256-bit seed from the operating system's CSPRNG, as 64 hex digits."""
    return secrets.token_hex(SEED_BYTES)


class Stream:
    """A deterministic, cryptographically strong stream of random numbers for one label."""

    def __init__(self, seed: str, label: str):
        try:
            self._key = bytes.fromhex(seed)
        except ValueError as exc:
            raise ValueError("seed must be hexadecimal") from exc
        if len(self._key) < 16:
            raise ValueError("seed must have at least 128 bits")
        self._label = label.encode()
        self._counter = 0
        self._buffer = b""

    def _bytes(self, n: int) -> bytes:
        while len(self._buffer) < n:
            block = hmac.new(
                self._key, self._label + b"\x00" + self._counter.to_bytes(8, "big"), hashlib.sha256
            ).digest()
            self._counter += 1
            self._buffer += block
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def randbelow(self, n: int) -> int:
        """A uniform integer in ``[0, n)`` (rejection sampling: no modulo bias)."""
        if n <= 0:
            raise ValueError("n must be positive")
        if n == 1:
            return 0
        bits = (n - 1).bit_length()
        nbytes = (bits + 7) // 8
        mask = (1 << bits) - 1
        while True:
            value = int.from_bytes(self._bytes(nbytes), "big") & mask
            if value < n:
                return value

    def random(self) -> float:
        """A uniform float in ``[0, 1)`` with 53 bits of precision."""
        return (int.from_bytes(self._bytes(7), "big") >> 3) / float(1 << 53)

    def shuffle(self, items: list[Any]) -> None:
        """Fisher–Yates in place."""
        for i in range(len(items) - 1, 0, -1):
            j = self.randbelow(i + 1)
            items[i], items[j] = items[j], items[i]


# --- configuration ----------------------------------------------------------------------
@dataclass(frozen=True)
class ArmSpec:
    code: str
    ratio: int


def validate(arms: Sequence[ArmSpec], block_sizes: Sequence[int]) -> None:
    """Raise ``ValueError`` unless every block size is a positive multiple of the ratio sum."""
    if len(arms) < 2:
        raise ValueError("at least two arms are needed")
    if len({a.code for a in arms}) != len(arms):
        raise ValueError("arm codes must be unique")
    if any(a.ratio < 1 for a in arms):
        raise ValueError("ratios must be positive integers")
    if not block_sizes:
        raise ValueError("at least one block size is needed")
    total = sum(a.ratio for a in arms)
    for size in block_sizes:
        if size < total or size % total:
            raise ValueError(
                f"block size {size} is not a positive multiple of the ratio sum {total}"
            )


def stratum_key(factors: Sequence[str], levels: Mapping[str, str]) -> str:
    """The canonical key of a stratum, e.g. ``site=umcu|sex=female`` (factor order as configured)."""
    if not factors:
        return "all"
    return "|".join(f"{f}={levels[f]}" for f in factors)


def all_strata(factor_levels: Mapping[str, Sequence[str]], factors: Sequence[str]) -> list[str]:
    """Every stratum key: the cartesian product of the levels of ``factors``."""
    if not factors:
        return ["all"]
    combos = itertools.product(*(sorted(set(factor_levels[f])) for f in factors))
    return [stratum_key(factors, dict(zip(factors, combo, strict=True))) for combo in combos]


# --- permuted blocks of random size -------------------------------------------------------
@dataclass(frozen=True)
class SlotSpec:
    position: int  # 1-based, contiguous within the stratum
    block: int  # 1-based block number
    block_size: int
    arm: str


def permuted_blocks(
    *,
    seed: str,
    stratum: str,
    arms: Sequence[ArmSpec],
    block_sizes: Sequence[int],
    length: int,
) -> list[SlotSpec]:
    """Complete permuted blocks covering at least ``length`` positions of one stratum.

    Each block's size is drawn uniformly from ``block_sizes``; the block holds each arm
    ``ratio × size / sum(ratios)`` times in a random order. Only complete blocks are
    generated, so the list may be slightly longer than ``length``.
    """
    validate(arms, block_sizes)
    sizes = sorted(set(block_sizes))
    total = sum(a.ratio for a in arms)
    stream = Stream(seed, f"blocks:{stratum}")
    slots: list[SlotSpec] = []
    block = 0
    while len(slots) < length:
        block += 1
        size = sizes[stream.randbelow(len(sizes))]
        content = [a.code for a in arms for _ in range(a.ratio * size // total)]
        stream.shuffle(content)
        start = len(slots)
        slots.extend(
            SlotSpec(position=start + i + 1, block=block, block_size=size, arm=arm)
            for i, arm in enumerate(content)
        )
    return slots


def generate(
    *,
    seed: str,
    strata: Iterable[str],
    arms: Sequence[ArmSpec],
    block_sizes: Sequence[int],
    length: int,
) -> dict[str, list[SlotSpec]]:
    """A list per stratum, each from its own stream of the same seed (strata are independent)."""
    return {
        s: permuted_blocks(seed=seed, stratum=s, arms=arms, block_sizes=block_sizes, length=length)
        for s in strata
    }


# --- fingerprint --------------------------------------------------------------------------
def canonical(
    *,
    method: str,
    arms: Sequence[ArmSpec],
    block_sizes: Sequence[int],
    factors: Sequence[str],
    probability: str,
    seed: str,
    slots: Iterable[tuple[str, int, str]],
) -> bytes:
    """The canonical byte form of a sequence: configuration, seed and every (stratum,
    position, arm), sorted, as compact JSON. The seed is included so the fingerprint of a
    short list cannot be matched by trying candidate lists."""
    doc = {
        "method": method,
        "arms": [[a.code, a.ratio] for a in arms],
        "block_sizes": sorted(block_sizes),
        "factors": list(factors),
        "probability": probability,
        "seed": seed,
        "slots": sorted([s, int(p), a] for s, p, a in slots),
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=True).encode()


def fingerprint(
    *,
    method: str,
    arms: Sequence[ArmSpec],
    block_sizes: Sequence[int],
    factors: Sequence[str],
    probability: str,
    seed: str,
    slots: Iterable[tuple[str, int, str]],
) -> str:
    """SHA-256 (hex) of :func:`canonical`."""
    document = canonical(
        method=method,
        arms=arms,
        block_sizes=block_sizes,
        factors=factors,
        probability=probability,
        seed=seed,
        slots=slots,
    )
    return hashlib.sha256(document).hexdigest()


# --- minimisation (Pocock–Simon) -----------------------------------------------------------
# counts[factor][level][arm] = number of earlier participants with that level in that arm
Counts = Mapping[str, Mapping[str, Mapping[str, int]]]


@dataclass(frozen=True)
class MinimisationResult:
    imbalance: dict[str, float]  # total imbalance if the participant went to each arm
    preferred: list[str]  # arms with the smallest total imbalance
    chosen: str
    draw: float
    probability: float


def minimisation_draw(seed: str, n: int) -> float:
    """The uniform draw for the ``n``-th minimised allocation of a sequence."""
    return Stream(seed, f"minimisation:{n}").random()


def imbalance_if(
    *, arms: Sequence[ArmSpec], counts: Counts, levels: Mapping[str, str], candidate: str
) -> Fraction:
    """Pocock–Simon marginal imbalance (range method) after adding the participant to
    ``candidate``: for each factor, the range of the ratio-weighted arm counts at the
    participant's level, summed over factors."""
    total = Fraction(0)
    for factor, level in levels.items():
        at_level = counts.get(factor, {}).get(level, {})
        weighted = [
            Fraction(at_level.get(a.code, 0) + (1 if a.code == candidate else 0), a.ratio)
            for a in arms
        ]
        total += max(weighted) - min(weighted)
    return total


def minimise(
    *,
    arms: Sequence[ArmSpec],
    counts: Counts,
    levels: Mapping[str, str],
    probability: float,
    draw: float,
) -> MinimisationResult:
    """Choose the arm for one participant.

    The arm(s) with the smallest total imbalance are preferred and taken with probability
    ``probability`` (several preferred arms share it equally); the others share the rest.
    When every arm ties, the draw allocates by the ratio weights.
    """
    if not 0.5 < probability <= 1:
        raise ValueError("probability must be in (0.5, 1]")
    if not 0 <= draw < 1:
        raise ValueError("draw must be in [0, 1)")
    scores = {
        a.code: imbalance_if(arms=arms, counts=counts, levels=levels, candidate=a.code)
        for a in arms
    }
    best = min(scores.values())
    preferred = [a.code for a in arms if scores[a.code] == best]
    others = [a.code for a in arms if scores[a.code] != best]
    if not others:
        total = sum(a.ratio for a in arms)
        edge = 0.0
        chosen = arms[-1].code
        for a in arms:
            edge += a.ratio / total
            if draw < edge:
                chosen = a.code
                break
    elif draw < probability:
        chosen = preferred[min(len(preferred) - 1, int(draw / probability * len(preferred)))]
    else:
        share = (draw - probability) / (1 - probability)
        chosen = others[min(len(others) - 1, int(share * len(others)))]
    return MinimisationResult(
        imbalance={k: float(v) for k, v in scores.items()},
        preferred=preferred,
        chosen=chosen,
        draw=draw,
        probability=probability,
    )
