"""Versioned code lists (CTCAE v5.0).

Placeholder with the agreed interface (``codes``, ``current_version``) so the definition
engine can be tested; the full module (shipped list, database import) replaces it.
"""

from __future__ import annotations

__all__ = ["codes", "current_version"]

_SHIPPED: dict[str, tuple[str, frozenset[str]]] = {
    "ctcae_v5": (
        "5.0",
        frozenset(
            {
                "10048031",  # wound dehiscence
                "10048038",  # wound infection
                "10003988",  # back pain
                "10028813",  # nausea
                "10016256",  # fatigue
                "10013950",  # dysphagia
            }
        ),
    ),
}


def codes(list_code: str) -> frozenset[str]:
    """The term codes of the current version of ``list_code`` (KeyError when unknown)."""
    return _SHIPPED[list_code][1]


def current_version(list_code: str) -> str:
    """The current version of ``list_code`` (KeyError when unknown)."""
    return _SHIPPED[list_code][0]
