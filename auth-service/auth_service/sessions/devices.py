"""A readable device label for the session list ("Firefox 133 on Windows 10"), parsed from the
user agent with ua-parser (the maintained uap-core rules, pinned in constraints.txt)."""
from __future__ import annotations

from functools import lru_cache

import ua_parser

UNKNOWN = "Unknown device"


def _versioned(family: str, major: str | None, minor: str | None = None) -> str:
    if not major:
        return family
    return f"{family} {major}.{minor}" if minor else f"{family} {major}"


@lru_cache(maxsize=4096)
def device_label(user_agent: str | None) -> str | None:
    """Browser and operating system; None when the session has no user agent. Cached: a user's
    sessions usually share a handful of agents, and parsing runs a few hundred regexes."""
    if not user_agent:
        return None
    parsed = ua_parser.parse(user_agent)
    browser = parsed.user_agent
    os = parsed.os
    browser_name = _versioned(browser.family, browser.major) if browser and browser.family != "Other" else None
    # Desktop OS versions read better with their minor part (macOS 10.15); "Windows 10" has none.
    os_name = _versioned(os.family, os.major, os.minor) if os and os.family != "Other" else None
    if browser_name and os_name:
        return f"{browser_name} on {os_name}"
    return browser_name or os_name or UNKNOWN
