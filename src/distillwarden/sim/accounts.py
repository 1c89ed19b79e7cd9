"""Plan the accounts of a scenario: who they are, how much they send, what they share.

Planning is cheap and deterministic from the scenario seed. Hydra members share a reseller
channel and, each with its own probability, the cluster's proxy /24 ranges, user agents and
payment fingerprints, so that no single hint links them all; benign accounts share popular
client user agents and now and then a payment method (sister accounts of one company).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from .personas import ATTACKERS, BENIGN, Persona
from .pools import Pools
from .scenario import Scenario, Volume

__all__ = ["AccountPlan", "plan_accounts"]

_US = 1_000_000

COMMON_UAS = (
    "OpenAI/Python 1.54.3", "OpenAI/Python 1.40.0", "OpenAI/Python 1.51.2",
    "python-httpx/0.27.0", "OpenAI/NodeJS 4.67.1", "axios/1.7.2", "node-fetch/1.0",
    "python-requests/2.32.3", "langchain-openai/0.2.1", "Go-http-client/2.0", "curl/8.5.0",
    "litellm/1.48.2", "Java-http-client/17.0.9",
)
REGION_TZ = {
    "US": -5.0, "GB": 0.0, "DE": 1.0, "FR": 1.0, "JP": 9.0, "SG": 8.0, "IN": 5.5, "BR": -3.0,
    "CA": -5.0, "AU": 10.0, "KR": 9.0, "NL": 1.0, "CN": 8.0, "RU": 3.0, "AE": 4.0,
}
_HOME_REGIONS = ("US", "US", "US", "GB", "DE", "FR", "JP", "SG", "IN", "BR", "CA", "AU", "KR",
                 "NL")
_UNLICENSED = ("CN", "RU", "AE")


@dataclass
class AccountPlan:
    """Everything about one simulated account except its requests."""

    index: int
    org_id: str
    persona: Persona
    label: str
    persona_name: str
    strategy: str | None
    cluster: str | None
    attacker_fraction: float
    split: str
    n_events: int
    n_attack: int
    start_us: int
    days: float
    tz_hours: float
    home_region: str
    regions: list[str]
    licence: str
    channel: str
    tier: str
    created_us: int
    ips: list[str]
    user_agents: list[str]
    payment: str
    attack: Persona | None = None
    shared_style: dict[str, Any] | None = None
    shared_starts: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def _ip(rng: np.random.Generator, net: tuple[int, int, int] | None = None) -> str:
    if net is None:
        net = (int(rng.integers(11, 223)), int(rng.integers(0, 256)), int(rng.integers(0, 256)))
    return f"{net[0]}.{net[1]}.{net[2]}.{int(rng.integers(1, 255))}"


def _rate(rng: np.random.Generator, vol: Volume) -> float:
    return float(vol.median * np.exp(vol.sigma * rng.standard_normal()))


class _Planner:
    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.rng = np.random.default_rng(np.random.SeedSequence([scenario.seed, 0xACC]))
        self.start_us = int(scenario.start.timestamp() * _US)
        self.plans: list[AccountPlan] = []
        self.rates: list[float] = []
        self.payments: list[str] = []
        self.ids: set[str] = set()

    def org_id(self) -> str:
        while True:
            oid = "org_" + self.rng.bytes(5).hex()
            if oid not in self.ids:
                self.ids.add(oid)
                return oid

    def base(
        self, persona: Persona, *, label: str, strategy: str | None, rate: float,
        days: float | None = None, split: str = "traffic", fraction: float = 0.0,
        attack: Persona | None = None, cluster: str | None = None,
    ) -> AccountPlan:
        rng = self.rng
        region = str(rng.choice(_HOME_REGIONS))
        tz = REGION_TZ[region] + float(rng.choice([0.0, 0.0, 0.0, -1.0, 1.0]))
        if label == "benign" or attack is not None:
            created = self.start_us - int(rng.uniform(30, 900) * 86_400 * _US)
        else:
            created = self.start_us - int(rng.uniform(1, 60) * 86_400 * _US)
        n_ips = int(rng.integers(1, 4))
        ips = [_ip(rng) for _ in range(n_ips)]
        uas = [str(rng.choice(COMMON_UAS)) for _ in range(int(rng.integers(1, 3)))]
        if self.payments and label == "benign" and rng.random() < 0.01:
            payment = str(rng.choice(self.payments))  # sister account of the same company
        else:
            payment = "pm_" + rng.bytes(8).hex()
        self.payments.append(payment)
        plan = AccountPlan(
            index=len(self.plans), org_id=self.org_id(), persona=persona, label=label,
            persona_name=persona.name, strategy=strategy, cluster=cluster,
            attacker_fraction=fraction, split=split, n_events=0, n_attack=0,
            start_us=self.start_us, days=days or self.s.days, tz_hours=tz,
            home_region=region, regions=[region], licence=persona.licence, channel="direct",
            tier=persona.tier, created_us=created, ips=ips, user_agents=uas, payment=payment,
            attack=attack,
        )
        self.plans.append(plan)
        self.rates.append(rate)
        return plan

    def benign(self) -> None:
        for group in self.s.benign:
            persona = BENIGN[group.persona]
            vol = group.volume_per_day or Volume(median=persona.volume_per_day[0],
                                                 sigma=persona.volume_per_day[1])
            n_ref = int(round(group.count * self.s.reference_fraction))
            for i in range(group.count):
                self.base(persona, label="benign", strategy=None, rate=_rate(self.rng, vol),
                          split="reference" if i < n_ref else "traffic")

    def attackers(self) -> None:
        for group in self.s.attackers:
            persona = ATTACKERS[group.strategy]
            vol = group.volume_per_day or Volume(median=persona.volume_per_day[0],
                                                 sigma=persona.volume_per_day[1])
            for _ in range(group.count):
                self.base(persona, label="attacker", strategy=group.strategy,
                          rate=_rate(self.rng, vol), days=group.days, fraction=1.0)

    def hydras(self) -> None:
        rng = self.rng
        for gi, group in enumerate(self.s.hydras):
            persona = ATTACKERS[group.strategy]
            vol = group.volume_per_day or Volume(median=25.0, sigma=0.4)
            days = group.days or self.s.days
            for ci in range(group.count):
                cluster = f"hydra-{gi}-{ci}-{rng.bytes(3).hex()}"
                nets = [(int(rng.integers(11, 223)), int(rng.integers(0, 256)),
                         int(rng.integers(0, 256))) for _ in range(int(rng.integers(2, 7)))]
                uas = [f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       f"Chrome/{int(rng.integers(90, 131))}.0.{int(rng.integers(1000, 7000))}.0 "
                       f"Safari/537.36", str(rng.choice(COMMON_UAS))]
                cards = ["pm_" + rng.bytes(8).hex()
                         for _ in range(max(1, group.size // 25))]
                home = str(rng.choice(("SG", "US", "GB", "JP")))
                regions = [home, home, str(rng.choice(_UNLICENSED))]
                style = persona.cluster_style(rng, Pools("traffic"))
                n_runs = max(4, int(days * 6))
                starts = self.start_us + (rng.random(n_runs) * days * 86_400 * _US).astype(
                    np.int64)
                created0 = self.start_us - int(rng.uniform(5, 40) * 86_400 * _US)
                for _ in range(group.size):
                    plan = self.base(persona, label="attacker", strategy=group.strategy,
                                     rate=_rate(rng, vol), days=days, fraction=1.0,
                                     cluster=cluster)
                    plan.channel = f"reseller:{group.reseller}"
                    plan.home_region = home
                    plan.regions = regions
                    plan.tz_hours = REGION_TZ[home]
                    plan.created_us = created0 + int(rng.uniform(0, 3) * 86_400 * _US)
                    if rng.random() < group.share.ip:
                        net = nets[int(rng.integers(0, len(nets)))]
                        plan.ips = [_ip(rng, net) for _ in range(int(rng.integers(1, 3)))]
                    if rng.random() < group.share.user_agent:
                        plan.user_agents = [uas[0]] if rng.random() < 0.7 else uas
                    if rng.random() < group.share.payment:
                        plan.payment = str(rng.choice(cards))
                    plan.shared_style = style
                    plan.shared_starts = starts

    def mixers(self) -> None:
        for group in self.s.mixers:
            host = BENIGN[group.host]
            attack = ATTACKERS[group.strategy]
            vol = group.volume_per_day or Volume(median=200.0, sigma=0.5)
            for frac in group.fractions:
                for _ in range(group.count):
                    self.base(host, label="attacker", strategy=group.strategy,
                              rate=_rate(self.rng, vol), fraction=float(frac), attack=attack)

    def finish(self) -> list[AccountPlan]:
        rates = np.asarray(self.rates, dtype=np.float64)
        days = np.asarray([p.days for p in self.plans], dtype=np.float64)
        expected = rates * days
        if self.s.total_events and expected.sum() > 0:
            expected *= self.s.total_events / expected.sum()
        counts = self.rng.poisson(expected)
        for plan, n in zip(self.plans, counts, strict=True):
            plan.n_events = max(1, int(n))
            if plan.attack is not None:
                plan.n_attack = int(round(plan.attacker_fraction * plan.n_events))
            elif plan.label == "attacker":
                plan.n_attack = plan.n_events
        # shuffle so that position in the files says nothing about the label
        order = self.rng.permutation(len(self.plans))
        plans = [self.plans[i] for i in order]
        for i, p in enumerate(plans):
            p.index = i
        return plans


def plan_accounts(scenario: Scenario) -> list[AccountPlan]:
    """All accounts of ``scenario`` with their volumes, infrastructure and labels."""
    planner = _Planner(scenario)
    planner.benign()
    planner.attackers()
    planner.hydras()
    planner.mixers()
    return planner.finish()


def created_iso(plan: AccountPlan) -> str:
    """Sign-up time as RFC 3339."""
    from datetime import UTC, datetime

    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=plan.created_us)).isoformat()
