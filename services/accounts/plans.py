"""The plan catalogue: what each plan gives, as typed values (configuration, not code).

Other products read these fields by name (the assistant its questions per day, consults
their allowance and answer time), so the names are a contract: ``name``, ``price``,
``code_page_views``, ``assistant_questions_per_day``, ``consults_per_month``,
``consult_answer_hours``. ``None`` means unlimited (or, for the answer time, no SLA).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

GUEST = "guest"  # the plan every guest starts on
FREE = "free"  # the plan registration moves a guest to


@dataclass(frozen=True)
class Plan:
    name: str
    price: str = "Free"  # for display: "Free", "$29 a month"
    code_page_views: int | None = 0  # in total; None = unlimited
    assistant_questions_per_day: int | None = 0  # None = unlimited
    consults_per_month: int | None = 0  # None = unlimited
    consult_answer_hours: int | None = None  # None = no answer-time promise
    # Buying: the provider's checkout page (e.g. a Stripe Payment Link) and the
    # provider's price id, which subscription webhooks name.
    checkout_url: str | None = None
    stripe_price: str | None = None

    @property
    def paid(self) -> bool:
        return self.checkout_url is not None or self.stripe_price is not None


DEFAULT_PLANS: tuple[Plan, ...] = (
    Plan(GUEST, "Free", code_page_views=1, assistant_questions_per_day=0),
    Plan(FREE, "Free", code_page_views=6, assistant_questions_per_day=10),
    Plan("pro", "$29 a month", code_page_views=None, assistant_questions_per_day=200,
         consults_per_month=10, consult_answer_hours=24),
)


class PlanCatalogue:
    """The plans by name. Built from ``Plan`` values, or from a mapping of name to views
    (the first catalogue format: ``{"guest": 1, "free": 6, "pro": null}``)."""

    def __init__(self, plans: Mapping[str, Plan | int | None] | tuple[Plan, ...]) -> None:
        items = plans if isinstance(plans, tuple) else tuple(
            value if isinstance(value, Plan) else Plan(name, code_page_views=value)
            for name, value in plans.items()
        )
        self.plans: dict[str, Plan] = {plan.name: plan for plan in items}
        missing = {GUEST, FREE} - set(self.plans)
        if missing:
            raise ValueError(f"the plan catalogue lacks {sorted(missing)}")

    def __contains__(self, plan: object) -> bool:
        return plan in self.plans

    def __iter__(self) -> Iterator[Plan]:
        return iter(self.plans.values())

    def get(self, name: str) -> Plan:
        """A plan dropped from the catalogue falls back to the free plan, never to more."""
        return self.plans.get(name) or self.plans[FREE]

    def limit(self, plan: str) -> int | None:
        return self.get(plan).code_page_views

    def by_price(self, price_id: str) -> Plan | None:
        return next((p for p in self if p.stripe_price == price_id), None)

    @property
    def verification_bonus(self) -> int | None:
        """Views a verified email adds to a new member's (None = unlimited)."""
        guest, free = self.limit(GUEST), self.limit(FREE)
        return None if guest is None or free is None else max(free - guest, 0)

    @property
    def has_upgrade(self) -> bool:
        free = self.limit(FREE)
        return free is not None and any(
            p.code_page_views is None or p.code_page_views > free for p in self
        )
