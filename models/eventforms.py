"""The event a console form or a row of a term's import describes, checked; and the import."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.events import KINDS, Event
from models.timeutil import show

FORM_TIME = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


IMPORT_COLUMNS = ("标题", "类型", "开始时间", "结束时间", "地点", "组织", "需报名", "人数上限", "报名截止",
                  "积分", "学时", "主题")


IMPORT_REQUIRED = ("标题", "类型", "开始时间", "结束时间", "地点")


YES, NO = ("是", "需要", "yes", "y", "1", "true"), ("否", "不需要", "no", "n", "0", "false", "")


def _number(text: str, kind=int, low=0, high=100000):
    text = (text or "").strip()
    if not text:
        return None, None
    try:
        value = kind(text)
    except ValueError:
        return None, "不是数字"
    return (value, None) if low <= value <= high else (None, f"应在 {low} 到 {high} 之间")


def check_event(raw: dict, now: datetime, time_format: str = FORM_TIME) -> tuple[dict | None, str | None]:
    """The event's fields a form (or an import row, with its own labels mapped) describes, or why not."""
    from models.timeutil import parse_local_time
    title = (raw.get("title") or "").strip()
    if not title:
        return None, "请填写活动名称"
    kind = raw.get("kind") or ""
    if kind not in KINDS:
        return None, f"类型“{kind}”应为：{'、'.join(KINDS)}"
    starts = parse_local_time(raw.get("starts_at"), time_format)
    ends = parse_local_time(raw.get("ends_at"), time_format)
    if starts is None or ends is None:
        return None, "请填写开始和结束时间（如 2026-12-01 14:00）"
    if ends <= starts:
        return None, "结束时间要晚于开始时间"
    if ends <= now:
        return None, "结束时间已经过去了"
    deadline = None
    if (raw.get("signup_deadline") or "").strip():
        deadline = parse_local_time(raw.get("signup_deadline"), time_format)
        if deadline is None or deadline > starts:
            return None, "报名截止时间应早于活动开始"
    fields = {"title": title[:100], "kind": kind, "place": (raw.get("place") or "").strip()[:200],
              "topic": (raw.get("topic") or "").strip()[:2000], "starts_at": starts, "ends_at": ends,
              "signup_deadline": deadline, "signup_required": bool(raw.get("signup_required"))}
    if not fields["place"]:
        return None, "请填写地点"
    for key, label, kind_, low, high in (("capacity", "人数上限", int, 1, 100000), ("points", "积分", int, 0, 100),
                                         ("study_hours", "学时", float, 0, 24),
                                         ("checkin_before_min", "提前签到分钟", int, 0, 720),
                                         ("checkin_after_min", "开始后可签到分钟", int, 0, 720),
                                         ("late_after_min", "迟到分钟", int, 0, 720),
                                         ("radius_m", "签到半径", int, 20, 100000)):
        value, problem = _number(raw.get(key), kind_, low, high)
        if problem:
            return None, f"{label}{problem}"
        if value is not None or key in ("capacity", "radius_m"):
            fields[key] = value
    coordinates = [(raw.get(k) or "").strip() for k in ("latitude", "longitude")]
    if any(coordinates):
        try:
            lat, lng = float(coordinates[0]), float(coordinates[1])
        except ValueError:
            return None, "经纬度应为数字，如 26.5783, 106.7135"
        if not (-90 <= lat <= 90 and -180 <= lng <= 180) or not fields.get("radius_m"):
            return None, "经纬度超出范围，或没有填写签到半径（米）"
        fields.update(latitude=lat, longitude=lng)
    else:
        fields.update(latitude=None, longitude=None, radius_m=None)
    return fields, None


def event_form_values(event: Event) -> dict:
    """An event as its form shows it (the inverse of check_event)."""
    def text(value):
        return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
    return {"title": event.title, "kind": event.kind, "place": event.place, "topic": event.topic,
            "starts_at": show(event.starts_at, FORM_TIME), "ends_at": show(event.ends_at, FORM_TIME),
            "signup_deadline": show(event.signup_deadline, FORM_TIME) if event.signup_deadline else "",
            "signup_required": "1" if event.signup_required else "", "capacity": text(event.capacity),
            "points": text(event.points), "study_hours": text(event.study_hours),
            "checkin_before_min": text(event.checkin_before_min), "checkin_after_min": text(event.checkin_after_min),
            "late_after_min": text(event.late_after_min), "latitude": text(event.latitude),
            "longitude": text(event.longitude), "radius_m": text(event.radius_m),
            "material_ids": ", ".join(map(str, event.materials()))}


@dataclass(frozen=True)
class EventRow:
    line: int
    fields: dict
    unit_name: str


def read_events(path: str, content: bytes | None, now: datetime) -> tuple[list[EventRow], list[tuple[int, str]]]:
    """A term's schedule: good rows, and (row number, reason) for each bad one; blank rows ignored."""
    from models.tables import read_table
    good, bad = [], []
    for line, raw in enumerate(read_table(path, content, IMPORT_REQUIRED, IMPORT_COLUMNS), start=2):
        if not any(raw.values()):
            continue
        needs = raw.get("需报名", "").strip().lower()
        if needs not in YES + NO:
            bad.append((line, f"需报名“{raw.get('需报名')}”应为 是 或 否"))
            continue
        form = {"title": raw.get("标题"), "kind": raw.get("类型"), "starts_at": raw.get("开始时间"),
                "ends_at": raw.get("结束时间"), "place": raw.get("地点"), "signup_required": needs in YES,
                "capacity": raw.get("人数上限"), "signup_deadline": raw.get("报名截止"), "points": raw.get("积分"),
                "study_hours": raw.get("学时"), "topic": raw.get("主题")}
        fields, reason = check_event(form, now, "%Y-%m-%d %H:%M")
        if reason:
            bad.append((line, reason))
        else:
            good.append(EventRow(line, fields, raw.get("组织", "").strip()))
    return good, bad


def template_rows() -> list[list]:
    return [list(IMPORT_COLUMNS),
            ["主题党日：重温入党誓词", "主题党日", "2026-12-05 14:00", "2026-12-05 16:00", "图书馆 301",
             "本科生第一党支部", "是", "60", "2026-12-04 18:00", "3", "2", "重温入党誓词，交流学习体会"],
            ["十二月支部党员大会", "支部党员大会", "2026-12-10 19:00", "2026-12-10 20:30", "学院 204", "", "否",
             "", "", "2", "1.5", "讨论发展对象"]]


def import_events(session: Session, rows: list[EventRow], bad: list[tuple[int, str]], creator: str,
                  default_unit: int | None, allows_unit) -> int:
    """Add every row's event, each for its 组织 (a unit's name, or 学院/支部 when a name repeats;
    empty: `default_unit`) and that unit's whole subtree; a unit that does not exist, repeats, or lies
    outside `allows_unit` makes its row bad. Nothing is added while any row is bad. Returns the count."""
    from models.members import OrgUnit
    units = {}
    for row in rows:
        if not row.unit_name:
            units[row.line] = default_unit
            continue
        parts = [p.strip() for p in row.unit_name.replace(" / ", "/").split("/") if p.strip()]
        found = [u for u in session.scalars(select(OrgUnit).where(OrgUnit.name == parts[-1]))
                 if len(parts) == 1 or (u.parent is not None and u.parent.name == parts[-2])]
        if not found:
            bad.append((row.line, f"组织“{row.unit_name}”不存在"))
        elif len(found) > 1:
            bad.append((row.line, f"组织“{row.unit_name}”重名，请写成 学院/支部"))
        elif not allows_unit(found[0].id):
            bad.append((row.line, f"组织“{row.unit_name}”不在你的管理范围内"))
        else:
            units[row.line] = found[0].id
    from models.screening import screener_of
    screener = screener_of(session)  # the titles and places reach members in every reminder
    for row in rows:
        words = screener.screen(f"{row.fields['title']}\n{row.fields['place']}\n{row.fields.get('topic', '')}").words
        if words:
            bad.append((row.line, f"内容中有词表里的词：【{'】【'.join(words)}】"))
    if bad:
        return 0
    for row in rows:
        unit = units[row.line]
        session.add(Event(created_by=creator, org_unit_id=unit, **row.fields,
                          audience=json.dumps({"units": [unit]} if unit else {})))
    session.flush()
    return len(rows)
