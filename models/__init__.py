"""SQLAlchemy models, one module per domain. No Flask here: plain functions take a session."""
from models.accounts import AdminUser, AuditLog
from models.base import Base
from models.delivery import Campaign, Delivery, MassJob, SubscriptionCredit
from models.followers import Follower
from models.members import Member, OrgUnit
from models.messagelog import MessageLog
from models.points import MemberPoints, PointEntry
from models.sandbox import SandboxMessage, SandboxQRCode, SandboxToken, SandboxUser, SandboxValue
from models.study import Attachment, DailyPush, Material, PlanEntry, Reading

__all__ = [
    "AdminUser", "AuditLog", "Base", "Campaign", "Delivery", "MassJob", "SubscriptionCredit", "Follower",
    "Member", "OrgUnit", "MessageLog", "SandboxMessage", "SandboxQRCode", "SandboxToken", "SandboxUser",
    "SandboxValue", "Attachment", "DailyPush", "Material", "MemberPoints", "PlanEntry", "PointEntry",
    "Reading",
]
