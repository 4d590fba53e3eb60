"""三会一课 on the record: minutes kept as a draft and frozen when submitted, the cadence each branch is
held to (green, yellow, red), the warning before a month's meeting is missed (once), exemptions."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from models.accounts import AuditLog
from models.checkins import CheckIn
from models.delivery import Campaign
from models.events import Event
from models.meetings import Minutes, standing
from models.signups import LeaveRequest
from models.timeutil import local_date, local_midnight, utcnow
from tests.conftest import phone_for
from tests.helpers import ChatUser, csrf_token, make_member, signed_in


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/admin/"), **data})


def text(response) -> str:
    return response.get_data(as_text=True)


def branch_meeting(session, branch, kind="支委会", days_ago=2, start=None, **kw) -> Event:
    start = start or utcnow() - timedelta(days=days_ago)
    event = Event(title=f"{kind}（测试）", kind=kind, place="会议室", starts_at=start,
                  ends_at=start + timedelta(hours=1), signup_required=False, org_unit_id=branch.id,
                  audience=f'{{"units": [{branch.id}]}}', created_by="cs", **kw)
    session.add(event)
    session.commit()
    return event


def test_minutes_are_kept_as_a_draft_then_submitted_with_attendance_frozen(app, school, session):
    cs_branch = school["cs"]
    late_comer = make_member(session, branch=cs_branch, stage="正式党员", student_no="2024010", name="晚到者")
    on_leave = make_member(session, branch=cs_branch, stage="正式党员", student_no="2024011", name="请假者")
    event = branch_meeting(session, cs_branch)
    session.add_all([CheckIn(event_id=event.id, member_id=school["oA"].id, method="scan"),
                     LeaveRequest(event_id=event.id, member_id=on_leave.id, reason="参加学科竞赛", status="approved")])
    session.commit()
    cs = signed_in(app, "cs")
    path = f"/admin/events/{event.id}/minutes"
    saved = post(cs, path, action="save", host="张明", content="学习党章第一章")
    assert saved.status_code == 302 and "暂存" in text(cs.get(path))
    refused = post(cs, path, action="submit", host="张明", content="学习党章第一章")
    assert refused.status_code == 400 and "提交前请填写：记录人" in text(refused)
    assert post(cs, path, action="submit", host="张明", recorder="李华", content="学习党章第一章",
                decisions="下月开展主题党日").status_code == 302
    page = text(cs.get(path))
    assert "已提交" in page and "实到 1 人" in page and "请假者（参加学科竞赛）" in page and "晚到者（未请假）" in page
    session.add(CheckIn(event_id=event.id, member_id=late_comer.id, method="code"))  # after the record was frozen
    session.commit()
    assert "实到 1 人" in text(cs.get(path))
    assert post(cs, path, action="save", host="改写").status_code == 403
    assert session.scalar(select(Minutes.host).where(Minutes.event_id == event.id)) == "张明"
    assert session.scalar(select(AuditLog).where(AuditLog.object_type == "minutes", AuditLog.action == "submit"))


def test_minutes_wait_for_the_meeting_to_end_and_stay_inside_the_scope(app, school, session):
    upcoming = branch_meeting(session, school["cs"], days_ago=-1)
    cs = signed_in(app, "cs")
    early = post(cs, f"/admin/events/{upcoming.id}/minutes", action="submit", host="张明", recorder="李华",
                 content="内容")
    assert early.status_code == 400 and "会议结束后才能提交" in text(early)
    other = branch_meeting(session, school["marx"])
    assert cs.get(f"/admin/events/{other.id}/minutes").status_code == 404
    lecture = branch_meeting(session, school["cs"], kind="讲座")
    refused = post(cs, f"/admin/events/{lecture.id}/minutes", action="save", host="张明")
    assert refused.status_code == 400 and "不是组织生活会议" in text(refused)


def test_each_branch_shows_green_yellow_or_red_against_the_cadence(app, school, session):
    today = local_date()
    held_on = today.replace(day=1)
    branch_meeting(session, school["cs"], kind="支委会", start=local_midnight(held_on) + timedelta(hours=10))
    lights = {s.kind: s.light for s in standing(session, school["cs"], today.replace(day=25), warn_day=20)
              if s.kind in ("支委会", "党小组会")}
    assert lights == {"支委会": "green", "党小组会": "red"}
    early = {s.kind: s.light for s in standing(session, school["marx"], date(today.year, today.month, 5))}
    assert early["党小组会"] == "yellow" and early["支委会"] == "yellow"
    board = text(signed_in(app, "cs").get("/admin/meetings"))
    assert 'data-kind="支委会" data-light="green"' in board and "马克思主义学院" not in board


def test_organisers_are_warned_once_when_the_month_passes_its_warning_day(app, school, session):
    from models.meetings import MeetingExemption, warn_missing
    secretary = make_member(session, branch=school["cs"], stage="正式党员", role="organiser", student_no="S20")
    ChatUser(phone_for(app), "oSecretary20").bind(secretary)
    late_in_month = local_midnight(local_date().replace(day=21)) + timedelta(hours=9)
    with app.app_context():
        from wxbot.db import db
        assert warn_missing(db.session, late_in_month, 20) == 1
        assert warn_missing(db.session, late_in_month, 20) == 0  # a second scheduler, a restart
    label = session.scalar(select(Campaign.text).where(Campaign.audience_label == "组织生活提醒"))
    assert "支委会" in label and "本科生第一党支部" in label
    session.add(MeetingExemption(org_unit_id=school["cs"].id, month=local_date().strftime("%Y-%m"), reason="寒假"))
    session.commit()
    lights = {s.light for s in standing(session, school["cs"], local_date().replace(day=21))}
    assert "red" not in lights and "exempt" in lights


def test_admins_set_the_cadence_and_organisers_only_read_it(app, school, session):
    from models.meetings import MEETING_KINDS, cadence
    fields = {f"period-{k}": "month" for k in MEETING_KINDS} | {f"times-{k}": "1" for k in MEETING_KINDS}
    assert post(signed_in(app, "cs"), "/admin/meetings/cadence", **fields).status_code == 403
    fields["period-党课"], fields["times-党课"] = "semester", "3"
    assert post(signed_in(app, "admin"), "/admin/meetings/cadence", **fields).status_code == 302
    assert cadence(session)["党课"] == ("semester", 3)
    from models.meetings import MeetingExemption
    bogus = post(signed_in(app, "admin"), "/admin/meetings/exemptions", unit="9" * 400, month="2027-02", reason="寒假")
    assert bogus.status_code == 404 and session.scalar(select(MeetingExemption)) is None  # not the whole school
    assert session.scalar(select(AuditLog).where(AuditLog.object_type == "meeting_cadence"))


def test_files_are_kept_with_draft_minutes_and_frozen_with_them(app, school, session):
    import io

    from models.meetings import MinutesAttachment
    event = branch_meeting(session, school["cs"])
    cs = signed_in(app, "cs")
    path = f"/admin/events/{event.id}/minutes"

    def upload(client, name: str, content: bytes = b"%PDF-1.4 sign-in sheet"):
        return client.post(f"{path}/files", data={"csrf_token": csrf_token(client, path),
                                                  "file": (io.BytesIO(content), name)},
                           content_type="multipart/form-data", follow_redirects=True)

    assert "只能上传" in text(upload(cs, "run.exe"))
    assert "附件已上传" in text(upload(cs, "签到表.jpg", b"\xff\xd8\xff photo"))
    stored = session.scalar(select(MinutesAttachment))
    assert stored.filename == "签到表.jpg" and stored.size == len(b"\xff\xd8\xff photo")
    download = cs.get(f"{path}/files/{stored.id}")
    assert download.status_code == 200 and download.data == b"\xff\xd8\xff photo"
    # Another college's organiser cannot fetch it; a file of another event is not found under this one.
    from tests.helpers import make_account
    make_account(session, "marx", "organiser", school["marx"].parent)
    assert signed_in(app, "marx").get(f"{path}/files/{stored.id}").status_code == 404
    other = branch_meeting(session, school["cs"], kind="党小组会")
    assert cs.get(f"/admin/events/{other.id}/minutes/files/{stored.id}").status_code == 404
    post(cs, path, action="submit", host="张明", recorder="李华", content="学习党章")
    assert "已提交，附件不能再改" in text(upload(cs, "补充.pdf"))
    refused = cs.post(f"{path}/files/{stored.id}/delete", data={"csrf_token": csrf_token(cs, path)})
    assert refused.status_code == 403 and session.scalar(select(func.count()).select_from(MinutesAttachment)) == 1
    assert "签到表.jpg" in text(cs.get(path))
