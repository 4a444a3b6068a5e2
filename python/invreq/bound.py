"""How many times, and until when, one invoice_request may be paid: the one home of that rule.

CLN's ``invoicerequest`` has ``single_use`` (default true) and nothing else: a reusable
request (``single_use=false``) is paid for every invoice its payee sends, without limit.
invreq adds two optional parameters, named in CLN's style, which only a reusable request
takes:

- ``max_payouts``: at most this many payments (pending or paid) in all;
- ``payout_window``: payments only within this many seconds of the request's creation
  (stored as the absolute ``payout_until``).

The bound is stated in the approval text a device signs (:meth:`PayoutBound.rows`; a
request without one is single-use, or reusable without limit), and :meth:`refusal` is the
rule the payment claim applies inside its transaction.

Only ``max_payouts`` bounds the money (``max_payouts`` x the request's amount); a window
alone bounds when, not how much, and the approval text says UNLIMITED for it.
"""

from __future__ import annotations

import dataclasses
import datetime

__all__ = ["SINGLE_USE", "PayoutBound", "until_text"]


def until_text(at: int | None) -> str:
    """An absolute time as the approval text shows it (UTC, to the second)."""
    if at is None:
        return "never"
    try:
        when = datetime.datetime.fromtimestamp(at, datetime.UTC)
    except (OverflowError, ValueError, OSError):  # beyond year 9999
        return f"{at} seconds after 1970-01-01 00:00:00 UTC"
    return f"{when:%Y-%m-%d %H:%M:%S} UTC"


@dataclasses.dataclass(frozen=True, slots=True)
class PayoutBound:
    single_use: bool
    #: reusable only: most payments (pending or paid) in all; None: no cap
    max_payouts: int | None = None
    #: reusable only: no payment is claimed at or after this unix time; None: no window
    payout_until: int | None = None

    @property
    def unlimited(self) -> bool:
        """No cap on the number of payouts, so none on the money."""
        return not self.single_use and self.max_payouts is None

    @property
    def cap(self) -> int | None:
        """Most payments in all (1 for single use); None: no cap."""
        return 1 if self.single_use else self.max_payouts

    def rows(self, amount_msat: int) -> list[str]:
        """The three approval-text rows that state the bound (our text only: no outside
        text, so their wrapping on a narrow screen cannot forge anything)."""
        if self.single_use:
            count, total = "payouts: single use", f"in all: {amount_msat} msat"
        elif self.max_payouts is not None:
            count = f"payouts: up to {self.max_payouts}"
            total = f"in all: up to {self.max_payouts * amount_msat} msat"
        else:
            count, total = "payouts: UNLIMITED", "in all: NO LIMIT"
        return [count, total, f"payouts until: {until_text(self.payout_until)}"]

    def describe(self) -> str:
        """One phrase for errors and logs."""
        if self.single_use:
            return "single use"
        count = "unlimited" if self.max_payouts is None else f"up to {self.max_payouts}"
        if self.payout_until is None:
            return f"{count} payouts"
        return f"{count} payouts until {until_text(self.payout_until)}"

    def refusal(self, taken: int, now: int) -> str | None:
        """Why another payout is not allowed when ``taken`` payments are pending or paid
        at ``now``; None if it is."""
        cap = self.cap
        if cap is not None and taken >= cap:
            return (
                f"the request's bound is reached: {taken} of {cap} payouts taken "
                f"({self.describe()})"
            )
        if self.payout_until is not None and now >= self.payout_until:
            return (
                f"the request's payout window ended at {until_text(self.payout_until)} "
                f"({self.describe()})"
            )
        return None


SINGLE_USE = PayoutBound(single_use=True)
