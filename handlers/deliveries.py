"""Events about deliveries: job-finish callbacks, and subscription-notification choices."""
from __future__ import annotations

import logging

from sqlalchemy import select, update

from models.delivery import Delivery, MassJob, grant_subscription
from wxbot.router import Context, Router

logger = logging.getLogger(__name__)
router = Router("deliveries", topic="我的")


@router.event("masssendjobfinish")
def mass_job_finished(ctx: Context):
    """Record what WeChat reports for a mass send (answered at once by the pipeline)."""
    data = ctx.inbound.message._data
    job = ctx.session.scalar(select(MassJob).where(MassJob.msg_id == str(data.get("MsgID", ""))))
    if job is not None:
        job.status = str(data.get("Status", ""))
        job.total, job.sent, job.errors = (int(data.get(k) or 0) for k in ("TotalCount", "SentCount", "ErrorCount"))
        if job.tag_id is not None:
            _delete_tag(job)
    return None


def _delete_tag(job: MassJob) -> None:
    """An account has at most 100 tags: the one made for a mass send goes once the job is done."""
    from wechatpy.exceptions import WeChatClientException

    from wxbot.outbound import wechat_client
    try:
        wechat_client().tag.delete(job.tag_id)
        job.tag_id = None
    except (WeChatClientException, OSError):
        logger.warning("could not delete tag %s of mass job %s; it is tried again on a repeated report",
                       job.tag_id, job.id)


@router.event("templatesendjobfinish")
def template_job_finished(ctx: Context):
    """Record whether a template message reached the user (e.g. 'failed:user block')."""
    data = ctx.inbound.message._data
    ctx.session.execute(update(Delivery).where(Delivery.wechat_msgid == str(data.get("MsgID", "")))
                        .values(callback_status=str(data.get("Status", ""))[:64]))
    return None


@router.event("subscribe_msg_popup_event")
def subscription_choice(ctx: Context):
    """Each 'accept' grants one subscription notification for that template; no API tells us, so we count."""
    items = (ctx.inbound.message._data.get("SubscribeMsgPopupEvent") or {}).get("List") or []
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, dict) and item.get("SubscribeStatusString") == "accept":
            grant_subscription(ctx.session, ctx.openid, str(item.get("TemplateId", ""))[:64])
    return None


@router.text("通知", who="all", help=("通知", "查看等你下次发消息时送达的通知"))
def waiting_notices(ctx: Context):
    """What waits in the member's inbox. This message itself opens the window that carries them."""
    from models.inbox import waiting_items
    from models.timeutil import show
    items = waiting_items(ctx.session, ctx.openid)
    if not items:
        return "没有等待送达的通知。"
    lines = [f"有 {len(items)} 条通知等待送达，会在接下来的几条消息里发给你："]
    for _delivery, campaign in items[:10]:
        until = f"（{show(campaign.expires_at, '%m-%d %H:%M')} 前有效）" if campaign.expires_at else ""
        lines.append(f"· {campaign.label}{until}")
    return "\n".join(lines)
