"""The optional runtime paths and what to install for them (pyproject's runtime extras).

The service starts on its defaults with ``[project] dependencies`` alone. Some options need
more, and only those options import it (lazily), so a missing extra stops the start with
one line saying what to install rather than an ``ImportError`` traceback (or a failure to
start at all on a Python the extra does not install on).
"""

from __future__ import annotations

import importlib.util

from invreq.errors import StartupError

__all__ = ["OPTIONAL_IMPORTS", "require"]

#: Top-level module -> (the extra that installs it, what else to know), or ("", how to
#: install it) where no extra can.
OPTIONAL_IMPORTS: dict[str, tuple[str, str]] = {
    # hwi 3.2.0 (the newest) declares Requires-Python <3.13, so its extra carries a marker.
    "hwilib": ("hwi", " on Python 3.11 or 3.12 (hwi 3.2.0 does not install on newer ones)"),
    # pyserial: the Jade USB transport (signers/jade_transport.py); hwi depends on it too.
    "serial": ("hwi", " on Python 3.11 or 3.12 (hwi 3.2.0 does not install on newer ones)"),
    "asyncpg": ("postgres", ""),
    # --lnurl. bolt11 is in the lnurl extra; lnurl itself cannot be (it requires bip32>=5,
    # which requires a coincurve older than ours), so it is installed --no-deps after it.
    # bolt11 2.2.0 and lnurl 2.0.2 declare Requires-Python <3.13: the extra carries a marker.
    "bolt11": ("lnurl", " on Python 3.11 or 3.12 (bolt11 2.2.0 does not install on newer ones)"),
    "lnurl": (
        "",
        "pip install 'invreq[lnurl]' && pip install --no-deps lnurl==2.0.2 bip32==5.0.0"
        " on Python 3.11 or 3.12 (lnurl 2.0.2 does not install on newer ones)",
    ),
}


def require(module: str, option: str) -> None:
    """Raise ``StartupError`` naming ``option`` and the extra if ``module`` is missing."""
    if importlib.util.find_spec(module) is not None:
        return
    extra, note = OPTIONAL_IMPORTS[module]
    how = f"pip install 'invreq[{extra}]'{note}; `make run` installs it" if extra else note
    raise StartupError(f"{option} needs {module}, which is not installed: {how}")
