"""Where a campaign's link leads each recipient, registered by the feature that made the campaign.

The engine gives every recipient of a campaign with a link their own receipt link (/r/<token>),
which records the read and then leads on. A plain article leads to its URL. A campaign of a
registered kind ("study": today's material) leads to the page its feature makes for that member;
the engine knows nothing of what the page is. A mass send (one text for many) cannot carry a
personal link, so the kind says what the text asks the member to do instead.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from models.delivery import Campaign


@dataclass(frozen=True)
class LinkKind:
    # (app, campaign, member id) -> the recipient's own page, or None when it cannot be made
    target: Callable[[Flask, Campaign, int], str | None]
    # What a text sent to many at once says instead of a personal link, e.g. "回复“学习”……"
    mass_hint: str


_KINDS: dict[str, LinkKind] = {}


def register_link_kind(name: str, target: Callable[[Flask, Campaign, int], str | None], mass_hint: str) -> None:
    """Called once by a feature (at import) for the campaigns it creates with link_kind=name."""
    _KINDS[name] = LinkKind(target, mass_hint)


def link_kind(name: str) -> LinkKind:
    return _KINDS[name]


def link_target(app: Flask, campaign: Campaign, member_id: int | None) -> str | None:
    """Where one recipient's link leads: their own page for a registered kind, else the article's URL."""
    if campaign.link_kind:
        return link_kind(campaign.link_kind).target(app, campaign, member_id) if member_id else None
    return campaign.url or None


def mass_link_text(campaign: Campaign) -> str:
    """What stands for the link in one text for many recipients."""
    return link_kind(campaign.link_kind).mass_hint if campaign.link_kind else campaign.url
