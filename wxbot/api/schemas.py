"""The API's request and response models: they validate requests and make the OpenAPI document."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Ids are the database's 32-bit integers: a larger number is refused here (400), not by the database.
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value):
        """A NUL character is no text a member means, and PostgreSQL refuses to store it."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("不能含有空字符")
        return value


class Problem(Model):
    """Every answer other than success."""

    code: str = Field(description="稳定的错误代码，如 no_session、not_bound、invalid_request")
    message: str = Field(description="给用户看的中文说明")


class Paging(Model):
    page: int = Field(1, ge=1, le=10000)
    per_page: int = Field(20, ge=1, le=100)


class Page(Model):
    page: int
    per_page: int
    total: int


# --- account --------------------------------------------------------------------------------------

class LoginIn(Model):
    code: str = Field(min_length=1, max_length=128, description="wx.login 得到的 code（只能用一次）")


class SessionOut(Model):
    token: str = Field(description="之后的请求放在 Authorization: Bearer … 中")
    expires_in: int = Field(description="秒；使用中会自动续期")
    bound: bool


class BindIn(Model):
    student_no: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=32)
    code: str | None = Field(None, max_length=12, description="绑定码（本校要求绑定码时）")


class MeOut(Model):
    name: str
    student_no: str
    branch: str
    stage: str
    role: str
    points_today: int
    points_total: int
    streak: int
    branch_rank: int | None
    branch_size: int
    school_rank: int | None


# --- events ---------------------------------------------------------------------------------------

class EventOut(Model):
    id: int
    title: str
    kind: str
    starts_at: datetime
    ends_at: datetime
    place: str
    signup_required: bool
    state: str = Field(description="我的状态，如 已报名、候补第 2 位、已签到")
    registration: str | None = Field(description="signed | waiting | offered | cancelled | null")
    checked_in_at: datetime | None


class EventList(Model):
    items: list[EventOut]
    paging: Page


class LeaveIn(Model):
    reason: str = Field(min_length=1, max_length=200)


class CheckinIn(Model):
    path: str | None = Field(None, max_length=512, description="wx.scanCode 返回的 path（iOS 编码或 Android 原样均可）")
    code: str | None = Field(None, max_length=12, description="现场屏幕上的六位数字")
    latitude: float | None = Field(None, ge=-90, le=90, description="成员同意时 wx.getLocation 的位置")
    longitude: float | None = Field(None, ge=-180, le=180)


class ActionOut(Model):
    code: str = Field(description="ok、already、waiting、pending ……")
    message: str
    event_id: int | None = None


# --- quiz -----------------------------------------------------------------------------------------

class QuestionOut(Model):
    id: int
    kind: str = Field(description="single | multiple | judge")
    stem: str
    options: list[str] = Field(description="按本次顺序，依次为 A、B、C……")
    number: int
    total: int


class AttemptOut(Model):
    id: int
    kind: str = Field(description="daily（计分）| practice | review | contest")
    position: int
    total: int
    question: QuestionOut | None
    notes: list[str] = Field(description="离开期间结束的答题等提示")
    message: str
    ends_at: datetime | None = Field(None, description="限时竞赛的作答截止时间（UTC）；之后提交的答案不计")


class AnswerIn(Model):
    attempt_id: Id
    position: int = Field(ge=0, le=1000, description="所答题目的序号（从 0 起）：重复提交同一题只算一次")
    answer: str | None = Field(None, max_length=12, description="A、AC、对、错；跳过时不填")
    skip: bool = False


class ResultOut(Model):
    right: int
    total: int
    points: int
    message: str


class AnswerOut(Model):
    correct: bool
    skipped: bool
    verdict: str
    right_answer: str | None
    explanation: str | None
    next: QuestionOut | None
    result: ResultOut | None


class ExitIn(Model):
    attempt_id: Id


class BookOut(Model):
    count: int
    next_due: date | None


class ContestOut(Model):
    id: int
    title: str
    state: str
    starts_at: datetime
    ends_at: datetime
    attempts_used: int
    attempts_allowed: int
    time_limit_seconds: int | None


class ContestList(Model):
    items: list[ContestOut]


# --- study ----------------------------------------------------------------------------------------

class AttachmentOut(Model):
    name: str
    url: str


class MaterialOut(Model):
    id: int
    day: date | None
    title: str
    summary: str
    cover: str
    read_url: str = Field(description="在 web-view 中打开的阅读页（本人专用链接，阅读满时长计入学习）")
    read: bool
    attachments: list[AttachmentOut]


class MaterialList(Model):
    items: list[MaterialOut]


class MaterialPage(MaterialOut):
    body: str = Field(description="正文（Markdown）")
    body_html: str = Field(description="正文的 HTML（已按阅读页的规则清理，可直接交给 rich-text）")
    seconds: int = Field(description="本人已阅读的秒数")
    need: int = Field(description="计入学习需要的秒数")


class BeaconIn(Model):
    seconds: int = Field(ge=0, le=3600, description="页面自上次报告以来可见的秒数（每 15 秒报告一次）")


class BeaconOut(Model):
    seconds: int
    need: int
    credited: bool
    points: int


class RankRow(Model):
    rank: int
    name: str
    branch: str
    points: int


class RankingOut(Model):
    branch: list[RankRow]
    school: list[RankRow]
    my_branch_rank: int | None
    my_school_rank: int | None
    my_points: int


# --- feedback -------------------------------------------------------------------------------------

class PostIn(Model):
    text: str = Field(min_length=1, max_length=500)


class PostOut(Model):
    number: int
    status: str = Field(description="visible | held | blocked | rejected ……")
    state: str = Field(description="给用户看的状态")
    text: str
    answer: str | None
    topic_id: int | None
    created_at: datetime


class PostResult(Model):
    code: str = Field(description="ok | held | blocked")
    message: str
    post: PostOut | None


class PostList(Model):
    items: list[PostOut]


class TopicOut(Model):
    id: int
    title: str
    pinned: bool
    url: str


class TopicList(Model):
    items: list[TopicOut]


# --- notices --------------------------------------------------------------------------------------

class NoticeOut(Model):
    id: int
    title: str
    text: str
    url: str | None
    created_at: datetime
    expires_at: datetime | None


class NoticeList(Model):
    items: list[NoticeOut]


class SeenIn(Model):
    ids: list[Id] = Field(min_length=1, max_length=100)


class SeenOut(Model):
    marked: int = Field(description="标为已在小程序中查看的条数（公众号不再重复发送）")


class SubscriptionsIn(Model):
    results: dict[str, str] = Field(
        max_length=3,
        description="wx.requestSubscribeMessage 的结果（一次最多 3 个模板）：模板编号 → accept | reject | ban | filter")


class SubscriptionsOut(Model):
    granted: int = Field(
        description="本系统使用的模板中成员点了“允许”的个数（配置了消息推送时以微信推送的事件记数）")
    message: str


# --- 我的发展 ---------------------------------------------------------------------------------------

class StepDone(Model):
    date: date
    name: str


class DevelopmentOut(Model):
    stage: str = Field(description="政治面貌")
    has_record: bool = Field(description="是否已有发展记录（递交入党申请书后由组织员建立）")
    done: list[StepDone]
    closed: str | None = Field(description="记录已关闭时的原因")
    probation_end: date | None = Field(description="预备期满的日期（预备党员）")
    upcoming: list[str] = Field(description="接下来的步骤和时间，如“确定为发展对象最早在 2027-03-15 以后，由支部讨论”")
