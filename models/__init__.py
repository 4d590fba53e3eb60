"""SQLAlchemy models, one module per domain. No Flask here: plain functions take a session."""
from models.accounts import AdminUser, AuditLog
from models.backups import Backup
from models.base import Base
from models.channelsettings import ChannelSettings
from models.checkins import CheckIn, LocationReport
from models.contest import Contest
from models.delivery import Campaign, Delivery, MassJob, SubscriptionCredit
from models.development import DevLocalRule, DevRecord, DevStep
from models.events import Event
from models.feedback import Post
from models.followers import Follower
from models.heartbeats import Heartbeat
from models.jobs import DoneOnce
from models.meetings import MeetingCadence, MeetingExemption, Minutes, MinutesAttachment
from models.members import Member, OrgUnit
from models.messagelog import MessageLog
from models.miniprogram import MiniUser
from models.points import MemberPoints, PointEntry
from models.quiz import AnswerRecord, Question, QuestionReport, QuizAttempt
from models.quizplay import ReviewCard
from models.reportdays import DailyFigure, SettledDay
from models.reportflow import Report, ReportPeriod
from models.sandbox import SandboxMessage, SandboxQRCode, SandboxToken, SandboxUser, SandboxValue
from models.signups import LeaveRequest, Registration
from models.study import Attachment, DailyPush, Material, PlanEntry, Reading

__all__ = [
    "AdminUser", "AnswerRecord", "Attachment", "AuditLog", "Backup", "Base", "Campaign", "ChannelSettings", "CheckIn",
    "Contest", "DailyFigure", "DailyPush", "Delivery", "DevLocalRule", "DevRecord", "DevStep", "DoneOnce", "Event",
    "Follower", "MiniUser",
    "Heartbeat", "LeaveRequest", "LocationReport", "MassJob", "Material", "MeetingCadence", "MeetingExemption",
    "Member", "MemberPoints", "MessageLog", "Minutes", "MinutesAttachment", "OrgUnit", "PlanEntry", "PointEntry",
    "Post", "Question",
    "QuestionReport", "QuizAttempt", "Reading", "Registration", "Report", "ReportPeriod", "ReviewCard",
    "SandboxMessage", "SandboxQRCode", "SettledDay",
    "SandboxToken", "SandboxUser", "SandboxValue", "SubscriptionCredit",
]
