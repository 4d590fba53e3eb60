"""Online theory study: materials, the study plan and reading records. Reading credit goes through
the one points ledger (models/points.py)."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, contains_eager, mapped_column, relationship

from models.base import Base
from models.members import Member, in_audience, units_above
from models.points import credit
from models.tables import read_table
from models.timeutil import local_date, parse_day, utcnow

MATERIAL_STATES = {"draft": "草稿", "submitted": "待审核", "published": "已发布"}
# The review workflow: what each action does, from which state, and who may take it.
MATERIAL_ACTIONS = {"submit": "提交审核", "approve": "审核通过并发布", "return": "退回修改", "withdraw": "撤回为草稿"}


class Material(Base):
    """A piece of study material; members see it once published."""

    __tablename__ = "materials"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")  # Markdown
    cover: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(100), default="")
    tags: Mapped[str] = mapped_column(String(200), default="")  # comma separated
    audience: Mapped[str] = mapped_column(Text, default="{}")  # audience spec: units, stages
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    org_unit_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the author's scope
    author: Mapped[str] = mapped_column(String(64), default="")
    reviewer: Mapped[str] = mapped_column(String(64), default="")
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str] = mapped_column(String(200), default="")  # why it was sent back, for the author
    published_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    attachments: Mapped[list[Attachment]] = relationship(back_populates="material", order_by="Attachment.id",
                                                         cascade="all, delete-orphan")

    @property
    def status_label(self) -> str:
        return MATERIAL_STATES.get(self.status, self.status)

    def audience_spec(self) -> dict:
        return json.loads(self.audience or "{}")


class Attachment(Base):
    """A file of a material (PDF, Word, PowerPoint), stored under instance/uploads, served signed."""

    __tablename__ = "material_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    stored_name: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    material: Mapped[Material] = relationship(back_populates="attachments")


class PlanEntry(Base):
    """One day of the study plan: which material, for which audience."""

    __tablename__ = "study_plan"
    # Per planning unit: one college booking a material for a day never blocks another college.
    __table_args__ = (UniqueConstraint("day", "material_id", "org_unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id"))
    audience: Mapped[str] = mapped_column(Text, default="{}")  # empty: the material's own audience
    org_unit_id: Mapped[int | None] = mapped_column(Integer)
    # The day's push may use mass sends (each spends one of a follower's monthly few); otherwise
    # (push.mass_send false) members out of reach get it when they next write.
    by_mass: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    material: Mapped[Material] = relationship()

    def audience_spec(self) -> dict:
        return json.loads(self.audience or "{}") or self.material.audience_spec()


class DailyPush(Base):
    """The daily push of one plan entry: its unique key is what makes the push happen once."""

    __tablename__ = "study_pushes"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_entry_id: Mapped[int] = mapped_column(ForeignKey("study_plan.id"), unique=True)
    # Members this entry reached when it was pushed (in the day's campaigns, with its other entries).
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The study day of a reading of a material that no plan day gives the member (one credit ever).
UNPLANNED = date(1970, 1, 1)


class Reading(Base):
    """One member's reading of one material for one study day: opened, active seconds, credited.

    A material the plan gives again in a later cycle is a new day's study: read again, it earns
    again (once per plan day, as the ledger's reference says)."""

    __tablename__ = "study_readings"
    # The report finds who read in a period by member and time, and adds each day up by time.
    __table_args__ = (UniqueConstraint("member_id", "material_id", "plan_day"),
                      Index("ix_study_readings_member_opened", "member_id", "opened_at"),
                      Index("ix_study_readings_opened_at", "opened_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id"), index=True)
    plan_day: Mapped[date] = mapped_column(Date, default=UNPLANNED)
    opened_at: Mapped[datetime]
    # The last page load or beacon: a beacon adds at most the time since then (real time).
    last_seen_at: Mapped[datetime | None]
    seconds: Mapped[int] = mapped_column(Integer, default=0)
    credited_at: Mapped[datetime | None]


# --- the review workflow -------------------------------------------------------------------------

class ReviewError(ValueError):
    """The action is not possible now; the message says why."""


def material_actions(material: Material, actor: str, may_change: bool, review_by_other: bool) -> list[str]:
    """The workflow actions `actor` may take on the material now (draft -> submitted -> published).
    `may_change`: the material lies in the actor's scope; `review_by_other`: authors may not approve
    their own."""
    if not may_change:
        return []
    actions = ["submit"] if material.status == "draft" else []
    if material.status == "submitted" and not (review_by_other and material.author == actor):
        actions += ["approve", "return"]
    if material.status in ("submitted", "published"):
        actions.append("withdraw")
    return actions


def take_action(material: Material, action: str, actor: str, note: str, at: datetime) -> None:
    """Move the material along the workflow; ReviewError when `action` is not one of its next steps."""
    if action == "return" and not note.strip():
        raise ReviewError("退回时请写明需要修改什么")
    if action == "submit":
        material.status, material.review_note = "submitted", ""
    elif action == "approve":
        material.status, material.reviewer, material.reviewed_at, material.published_at = "published", actor, at, at
    elif action in ("return", "withdraw"):
        material.status, material.reviewer, material.reviewed_at = "draft", "", None
        material.review_note = note.strip()[:200] if action == "return" else ""
    else:
        raise ReviewError("没有这个操作")


def back_to_draft_on_change(material: Material) -> None:
    """A changed text must be reviewed again."""
    if material.status != "draft":
        material.status, material.reviewer, material.reviewed_at = "draft", "", None


# --- importing a term's plan --------------------------------------------------------------------

PLAN_COLUMNS = ("日期", "材料标题")


def read_plan(path: str, content: bytes | None, materials: dict[str, Material]) -> tuple[list, list[str]]:
    """(day, material) per row of a plan file (.xlsx, or .csv in UTF-8 or GBK), and the errors by row
    number. `materials` are the published materials the importer may plan, by title."""
    planned, errors = [], []
    for line, row in enumerate(read_table(path, content, PLAN_COLUMNS), start=2):
        if not any(row.values()):
            continue
        day, title = parse_day(row["日期"]), row["材料标题"]
        if day is None:
            errors.append(f"第 {line} 行：日期“{row['日期']}”不对（应为 2026-12-01 这样的日期）")
        elif title not in materials:
            errors.append(f"第 {line} 行：没有已发布的材料《{title}》")
        else:
            planned.append((day, materials[title]))
    return planned, errors


# --- what a member sees -------------------------------------------------------------------------

def plan_for(session: Session, member: Member, first: date, last: date) -> list[PlanEntry]:
    """The member's published plan entries from `first` to `last`, newest day first."""
    entries = session.scalars(select(PlanEntry).join(Material, Material.id == PlanEntry.material_id)
                              .options(contains_eager(PlanEntry.material))
                              .where(PlanEntry.day >= first, PlanEntry.day <= last, Material.status == "published")
                              .order_by(PlanEntry.day.desc(), PlanEntry.id))
    units = units_above(member)
    return [e for e in entries if in_audience(member, e.audience_spec(), units)]


def may_read(session: Session, member: Member, material: Material) -> bool:
    """Published, and meant for the member: by the material's audience or a plan entry's."""
    if material.status != "published":
        return False
    units = units_above(member)
    if in_audience(member, material.audience_spec(), units):
        return True
    entries = session.scalars(select(PlanEntry).where(PlanEntry.material_id == material.id))
    return any(e.audience != "{}" and in_audience(member, e.audience_spec(), units) for e in entries)


# --- reading credit -----------------------------------------------------------------------------

BEACON_MAX_SECONDS = 30  # a page reports every 15 s; a larger claim is cut
BEACON_PERIOD = timedelta(seconds=15)


def study_day(session: Session, member: Member, material: Material, today: date) -> date:
    """The plan day a reading of `material` today counts for: the latest day up to today whose plan
    gives this member this material, or UNPLANNED."""
    units = units_above(member)
    for entry in session.scalars(select(PlanEntry).where(PlanEntry.material_id == material.id, PlanEntry.day <= today)
                                 .order_by(PlanEntry.day.desc())):
        if in_audience(member, entry.audience_spec(), units):
            return entry.day
    return UNPLANNED


def record_open(session: Session, member: Member, material: Material, at: datetime,
                day: date | None = None) -> Reading:
    """The member's reading of the material for its study day (`day`, else worked out), created on
    the first open; every open is noted as the moment from which further reading time can count."""
    day = day or study_day(session, member, material, local_date(at))
    reading = _reading(session, member, material, day)
    if reading is None:
        try:
            with session.begin_nested():
                reading = Reading(member_id=member.id, material_id=material.id, plan_day=day, opened_at=at,
                                  seconds=0, last_seen_at=at)
                session.add(reading)
        except IntegrityError:  # opened twice at once
            reading = _reading(session, member, material, day)
    reading.last_seen_at = at
    return reading


def _reading(session: Session, member: Member, material: Material, day: date, lock: bool = False) -> Reading | None:
    query = select(Reading).where(Reading.member_id == member.id, Reading.material_id == material.id,
                                  Reading.plan_day == day)
    if lock:  # beacons of one reading are counted one at a time (PostgreSQL; SQLite writes one at a time)
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def credit_reference(reading: Reading) -> str:
    """The ledger's reference of a reading: its plan day (each day's study earns once), or for a
    material no plan gives the member, the material (once ever)."""
    return f"material:{reading.material_id}" if reading.plan_day == UNPLANNED else f"plan:{reading.plan_day}"


def record_beacon(session: Session, member: Member, material: Material, seconds: int, at: datetime,
                  settings) -> tuple[Reading, int]:
    """Add the active seconds the page reports, never more than real time allows: the credited time
    runs on a clock (`last_seen_at`) that a report moves forward by what it was credited, and that
    lags real time by at most one report period, so five beacons at once count once. Credit the
    reading once the threshold is reached. Returns the reading and the points credited now."""
    day = study_day(session, member, material, local_date(at))
    reading = _reading(session, member, material, day, lock=True) or record_open(session, member, material, at, day)
    since = reading.last_seen_at or reading.opened_at
    added = min(max(0, seconds), BEACON_MAX_SECONDS, max(0, int((at - since).total_seconds())))
    reading.seconds += added
    reading.last_seen_at = max(since + timedelta(seconds=added), at - BEACON_PERIOD)
    if reading.credited_at is not None or reading.seconds < settings.study.read_seconds:
        return reading, 0
    reading.credited_at = at
    return reading, credit(session, member, "read", credit_reference(reading), at, settings.points)
