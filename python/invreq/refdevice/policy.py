"""What the device's user would answer: sign everything, nothing, up to an amount, or ask.

The policy stands in for the person holding a hardware device, so the host's handling of a
refusal (code -32000, which hwilib maps to ``ActionCanceledError``) can be tested without
anybody pressing a button.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TextIO

from invreq.refdevice.jade_rpc import USER_CANCELLED, RpcFailure

__all__ = ["Policy"]

Mode = Literal["auto", "deny", "max-msat", "prompt"]
_SIMPLE: dict[str, Mode] = {"auto": "auto", "deny": "deny", "prompt": "prompt"}


@dataclass(frozen=True, slots=True)
class Policy:
    mode: Mode
    max_msat: int | None = None

    @classmethod
    def parse(cls, text: str) -> Policy:
        """``auto``, ``deny``, ``prompt`` or ``max-msat=N``; ValueError otherwise."""
        simple = _SIMPLE.get(text)
        if simple is not None:
            return cls(simple)
        name, sep, value = text.partition("=")
        if name == "max-msat" and sep and value.isdecimal():
            return cls("max-msat", int(value))
        raise ValueError(f"unknown policy {text!r}: use auto, deny, prompt or max-msat=N")

    def __str__(self) -> str:
        return f"max-msat={self.max_msat}" if self.mode == "max-msat" else self.mode

    def approve(
        self,
        *,
        amount_msat: int | None,
        has_amount: bool,
        console: TextIO,
        answers: TextIO,
    ) -> None:
        """Return if the request may be signed, raise ``RpcFailure`` (-32000) if not.

        ``has_amount`` is False for requests that carry no amount at all (a text message):
        an amount limit does not concern them. A BOLT 12 request without ``invreq_amount``
        has an amount the device cannot see, so a limit refuses it rather than guess.
        """
        if self.mode == "auto":
            return
        if self.mode == "deny":
            raise RpcFailure(USER_CANCELLED, "user declined")
        if self.mode == "max-msat":
            limit = self.max_msat
            if not has_amount:
                return
            if amount_msat is None:
                raise RpcFailure(
                    USER_CANCELLED, f"no invreq_amount: cannot check the limit of {limit} msat"
                )
            if limit is not None and amount_msat > limit:
                raise RpcFailure(
                    USER_CANCELLED,
                    f"amount {amount_msat} msat is above the limit of {limit} msat",
                )
            return
        console.write("approve? [y/n] ")
        console.flush()
        answer = answers.readline()  # "" at end of input: nobody there to approve
        if answer.strip().lower() != "y":
            raise RpcFailure(USER_CANCELLED, "user declined")
