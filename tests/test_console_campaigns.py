"""Broadcasts from the console: live count, preview, send, progress, cancel, schedule, scope."""
from sqlalchemy import select

from models.accounts import AuditLog
from models.delivery import Campaign, Delivery
from tests.helpers import csrf_token, signed_in
from wxbot.delivery.engine import DeliveryWorker


def form(client, **fields):
    return {**fields, "csrf_token": csrf_token(client, "/admin/campaigns/new")}


def test_the_recipient_count_follows_the_audience_and_the_scope(app, school):
    admin, organiser = signed_in(app, "admin"), signed_in(app, "cs")
    count = lambda client, **f: client.post("/admin/campaigns/count", data=form(client, **f)).get_json()["count"]  # noqa: E731
    assert count(admin, everyone="1") == 3
    assert count(admin, stages="正式党员") == 2
    assert count(admin) == 0  # nothing picked yet
    assert count(organiser, everyone="1") == 2  # an organiser's "everyone" is their own subtree
    assert count(organiser, stages="正式党员") == 1
    assert count(organiser, units=str(school["marx"].id)) == 0


def test_a_console_broadcast_is_sent_shown_live_and_audited(app, session, school):
    admin = signed_in(app, "admin")
    asked = admin.post("/admin/campaigns", data=form(admin, text="周五开会", stages="正式党员", action="send"))
    assert asked.status_code == 200 and 'data-count="2"' in asked.get_data(as_text=True)  # asked once, with the count
    assert session.scalar(select(Campaign)) is None
    response = admin.post("/admin/campaigns", data=form(admin, text="周五开会", stages="正式党员", action="send",
                                                        confirmed="1"))
    campaign_id = int(response.headers["Location"].rsplit("/", 1)[1])
    for _ in range(3):
        DeliveryWorker(app, "console-worker").step()
    progress = admin.get(f"/admin/campaigns/{campaign_id}/progress").get_json()
    assert (progress["sent"], progress["total"], progress["status"]) == (2, 2, "已完成")
    assert progress["by_channel"] == {"客服消息": 2}
    assert "周五开会" in admin.get("/admin/campaigns").get_data(as_text=True)
    assert session.scalar(select(AuditLog).where(AuditLog.object_type == "campaign")).actor == "admin"


def test_a_preview_goes_to_one_member_labelled_keeps_the_draft_and_is_not_a_campaign(app, session, school):
    from tests.conftest import phone_for
    from tests.helpers import ChatUser
    admin = signed_in(app, "admin")
    page = admin.post("/admin/campaigns", data=form(admin, text="预览内容", stages="正式党员", preview_to="2024002",
                                                    action="preview")).get_data(as_text=True)
    assert "预览已发送给 2024002" in page and ">预览内容</textarea>" in page  # the draft is still on the page
    assert 'name="stages" value="正式党员" checked' in page
    assert [d.openid for d in session.scalars(select(Delivery))] == ["oB"]
    DeliveryWorker(app, "w").step()
    assert ChatUser(phone_for(app), "oB").received(session)[-1]["content"] == "【预览】预览内容"
    assert "预览内容" not in admin.get("/admin/campaigns").get_data(as_text=True)
    audit_table = admin.get("/admin/audit").get_data(as_text=True).split('id="audit"')[1]
    assert "发送预览给 2024002" in audit_table and "群发 #" not in audit_table  # on record as a preview only


def test_a_cancelled_campaign_sends_nothing_more(app, session, school):
    admin = signed_in(app, "admin")
    response = admin.post("/admin/campaigns", data=form(admin, text="取消我", everyone="1", action="send",
                                                        confirmed="1"))
    campaign_id = int(response.headers["Location"].rsplit("/", 1)[1])
    asked = admin.post(f"/admin/campaigns/{campaign_id}/cancel", data=form(admin))
    assert "尚未发出的 3 人将不再收到" in asked.get_data(as_text=True)
    admin.post(f"/admin/campaigns/{campaign_id}/cancel", data=form(admin, confirmed="1"))
    DeliveryWorker(app, "w").step()
    statuses = set(session.scalars(select(Delivery.status)))
    assert statuses == {"cancelled"} and session.get(Campaign, campaign_id).status == "cancelled"
    assert "取消群发…" not in admin.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)  # no button left


def test_a_scheduled_campaign_waits_for_its_time(app, session, school):
    admin = signed_in(app, "admin")
    admin.post("/admin/campaigns", data=form(admin, text="明年再发", everyone="1", at="2099-01-01T08:00",
                                             action="send", confirmed="1"))
    DeliveryWorker(app, "w").step()
    assert set(session.scalars(select(Delivery.status))) == {"pending"}
    assert session.scalars(select(Campaign.status)).one() == "scheduled"


def test_an_organiser_cannot_see_another_units_campaign(app, session, school):
    admin, organiser = signed_in(app, "admin"), signed_in(app, "cs")
    response = admin.post("/admin/campaigns", data=form(admin, text="全校", everyone="1", action="send",
                                                        confirmed="1"))
    campaign_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert organiser.get(f"/admin/campaigns/{campaign_id}").status_code == 404
    assert "全校" not in organiser.get("/admin/campaigns").get_data(as_text=True)


def test_sending_without_an_audience_or_content_says_what_is_missing(app, school):
    admin = signed_in(app, "admin")
    no_audience = admin.post("/admin/campaigns", data=form(admin, text="x", action="send"), follow_redirects=True)
    assert "请选择发送对象" in no_audience.get_data(as_text=True)
    no_content = admin.post("/admin/campaigns", data=form(admin, everyone="1", action="send"), follow_redirects=True)
    assert "内容不能为空" in no_content.get_data(as_text=True)


def test_a_long_text_is_cut_with_an_ellipsis_in_the_list_and_kept_whole_in_the_audit(app, session, school):
    admin = signed_in(app, "admin")
    text = "本周五下午三点在学院 301 会议室召开支部党员大会，请全体党员准时参加"
    admin.post("/admin/campaigns", data=form(admin, text=text, everyone="1", action="send", confirmed="1"))
    listing = admin.get("/admin/campaigns").get_data(as_text=True)
    assert "本周五下午三点在学院 301 会议室召开支部党…" in listing and text not in listing
    entry = session.scalar(select(AuditLog).where(AuditLog.object_type == "campaign"))
    assert entry.summary.endswith("…") and text in entry.after  # the record keeps every word
