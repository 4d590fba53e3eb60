"""The 发展党员 rules as data, and the date engine over them: when each step may be recorded, when it
is due, and why a date is refused. Plain functions of dates; the database lives in models/development.py.

Working days come from chinese_calendar (holidays and 调休 as the State Council publishes them, a
year at a time). A day beyond the years it knows is counted Monday to Friday and the result is
marked provisional (暂定): shown as such, never passed off as certain.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import chinese_calendar
import yaml
from dateutil.relativedelta import relativedelta

RULES_FILE = Path(__file__).with_name("development_rules.yaml")
SOURCE = "《中国共产党发展党员工作细则》"
PROBATION_END = "probation_end"
LOCAL_KEYS = ("activist_after_apply_months", "intake_months", "thought_report_quarterly")


# -- the calendar ---------------------------------------------------------------------------------

def _calendar_years() -> tuple[int, int]:
    years = {day.year for day in chinese_calendar.holidays}
    return min(years), max(years)


CALENDAR_FIRST, CALENDAR_LAST = _calendar_years()


def known(day: date) -> bool:
    """Whether the calendar knows this day's holidays and 调休."""
    return CALENDAR_FIRST <= day.year <= CALENDAR_LAST


def is_workday(day: date) -> bool:
    if known(day):
        return chinese_calendar.is_workday(day)
    return day.weekday() < 5


def working_days(start: date, end: date) -> tuple[int, bool]:
    """Working days from start to end, both included, and whether the count is provisional."""
    count, day = 0, start
    while day <= end:
        count += is_workday(day)
        day += timedelta(days=1)
    return count, not (known(start) and known(end))


def nth_working_day(start: date, n: int) -> tuple[date, bool]:
    """The day on which a period starting on `start` has lasted n working days (start counted)."""
    day, count = start, 0
    while True:
        if is_workday(day):
            count += 1
            if count >= n:
                return day, not (known(start) and known(day))
        day += timedelta(days=1)


# -- the rules ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """A span counted from an earlier step (or from the end of the 预备期)."""
    source: str
    months: int = 0
    days: int = 0
    working_days: int = 0

    @classmethod
    def parse(cls, spec: dict | None) -> Interval | None:
        if not spec:
            return None
        return cls(source=spec["from"], months=int(spec.get("years", 0)) * 12 + int(spec.get("months", 0)),
                   days=int(spec.get("days", 0)), working_days=int(spec.get("working_days", 0)))

    def after(self, start: date) -> tuple[date, bool]:
        if self.working_days:
            return nth_working_day(start, self.working_days + 1)
        return start + relativedelta(months=self.months, days=self.days), False

    def words(self) -> str:
        if self.working_days:
            return f"{self.working_days} 个工作日"
        if self.months and self.months % 12 == 0:
            return f"{self.months // 12} 年"
        if self.months:
            return f"{abs(self.months)} 个月"
        return f"{self.days} 天"


@dataclass(frozen=True)
class Step:
    key: str
    name: str
    article: str
    kind: str
    stage: str | None = None
    requires: tuple[str, ...] = ()
    earliest: Interval | None = None
    deadline: Interval | None = None
    hard: Interval | None = None
    window_days: int = 0
    every_months: int = 0
    anchor: str = ""
    until: str = ""
    optional: bool = False
    once: bool = True
    sensitive: bool = False
    fields: tuple[str, ...] = ()

    @property
    def recurring(self) -> bool:
        return self.kind == "recurring"

    @property
    def rule(self) -> str:
        return f"{SOURCE}{self.article}"


@dataclass(frozen=True)
class Rules:
    version: str
    steps: tuple[Step, ...]
    probation_months: int
    extension_months: tuple[int, int]
    local: dict = field(default_factory=dict)

    def step(self, key: str) -> Step:
        return self._by_key()[key]

    def _by_key(self) -> dict[str, Step]:
        return {step.key: step for step in self.steps}

    def has(self, key: str) -> bool:
        return key in self._by_key()

    @property
    def main_line(self) -> list[Step]:
        return [s for s in self.steps if not s.recurring and not s.optional]

    def describe(self, step: Step) -> str:
        """The step's time rules in words (the rules page)."""
        parts = []
        if step.earliest:
            source, span = self.name(step.earliest.source), step.earliest
            if span.months < 0:
                parts.append(f"{source}前 {span.words()}起")
            elif span.months or span.days or span.working_days:
                parts.append(f"{source}满 {span.words()}后")
            else:
                parts.append(f"{source}以后")
        if step.key == "activist" and self.local.get("activist_after_apply_months"):
            parts.append(f"本校：递交申请书满 {self.local['activist_after_apply_months']} 个月后")
        if step.deadline:
            parts.append(f"{self.name(step.deadline.source)}后 {step.deadline.words()}内")
        if step.hard:
            parts.append(f"特殊情况最长 {step.hard.words()}")
        if step.window_days:
            parts.append(f"不少于 {step.window_days} 个工作日")
        if step.every_months:
            parts.append(f"每 {step.every_months} 个月一次")
        if step.key == "branch_meeting" and self.local.get("intake_months"):
            parts.append("本校：只在 " + "、".join(f"{m} 月" for m in self.local["intake_months"]) + "进行")
        return "；".join(parts) or "—"

    def stage_of(self, key: str) -> str | None:
        return self.step(key).stage

    def name(self, key: str) -> str:
        return PROBATION_END_NAME if key == PROBATION_END else self.step(key).name


PROBATION_END_NAME = "预备期满"


def _step(spec: dict) -> Step:
    return Step(key=spec["key"], name=spec["name"], article=spec["article"], kind=spec["kind"],
                stage=spec.get("stage"), requires=tuple(spec.get("requires", ())),
                earliest=Interval.parse(spec.get("earliest")), deadline=Interval.parse(spec.get("deadline")),
                hard=Interval.parse(spec.get("hard")),
                window_days=int((spec.get("window") or {}).get("working_days", 0)),
                every_months=int(spec.get("every_months", 0)), anchor=spec.get("from", ""),
                until=spec.get("until", ""), optional=bool(spec.get("optional")),
                once=spec["kind"] != "recurring", sensitive=bool(spec.get("sensitive")),
                fields=tuple(spec.get("fields", ())))


@lru_cache(maxsize=1)
def _shipped() -> dict:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))


def load_rules(local: dict | None = None) -> Rules:
    """The shipped rules with the school's local settings (console 本地规则) applied over their defaults."""
    data = _shipped()
    settings = dict(data.get("local_defaults", {})) | {k: v for k, v in (local or {}).items() if k in LOCAL_KEYS}
    low, high = data.get("extension_months", [6, 12])
    return Rules(version=data["version"], steps=tuple(_step(s) for s in data["steps"]),
                 probation_months=int(data.get("probation_months", 12)), extension_months=(int(low), int(high)),
                 local=settings)


def check_local(values: dict) -> tuple[dict, list[str]]:
    """Local settings as stored, and what is wrong with them (in words for the console)."""
    errors, clean = [], {}
    months = values.get("activist_after_apply_months", 0)
    try:
        months = int(months or 0)
        if not 0 <= months <= 24:
            raise ValueError
        clean["activist_after_apply_months"] = months
    except (TypeError, ValueError):
        errors.append("积极分子最早在申请后几个月：请填 0 到 24 的整数")
    intake = values.get("intake_months", [])
    if isinstance(intake, str):
        intake = [part for part in intake.replace("，", ",").replace("、", ",").split(",") if part.strip()]
    try:
        clean["intake_months"] = sorted({int(m) for m in intake})
        if any(not 1 <= m <= 12 for m in clean["intake_months"]):
            raise ValueError
    except (TypeError, ValueError):
        errors.append("接收预备党员的月份：请填 1 到 12 的月份，用逗号分开，例如 3,9")
    clean["thought_report_quarterly"] = bool(values.get("thought_report_quarterly"))
    return clean, errors


# -- a person's history ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Done:
    """One recorded step."""
    key: str
    on: date
    ends_on: date | None = None
    details: dict = field(default_factory=dict)


@dataclass
class History:
    done: list[Done]
    leaves_on: date | None = None  # expected to leave school (graduation)

    def first(self, key: str) -> date | None:
        dates = [d.on for d in self.done if d.key == key]
        return min(dates) if dates else None

    def last(self, key: str) -> Done | None:
        entries = [d for d in self.done if d.key == key]
        return max(entries, key=lambda d: d.on) if entries else None

    def has(self, key: str) -> bool:
        return any(d.key == key for d in self.done)


def probation_end(rules: Rules, history: History) -> date | None:
    """The end of the 预备期: a year from the 支部大会, plus an extension if one was decided."""
    start = history.first("branch_meeting")
    if start is None:
        return None
    extension = history.last("extension")
    months = rules.probation_months + (int(extension.details.get("months", 0)) if extension else 0)
    return start + relativedelta(months=months)


def anchor_date(rules: Rules, history: History, source: str) -> date | None:
    if source == PROBATION_END:
        return probation_end(rules, history)
    return history.first(source)


@dataclass
class Window:
    """When a step may be recorded: no earlier than `earliest`, due by `latest`, refused after `hard`."""
    step: Step
    earliest: date | None = None
    latest: date | None = None
    hard: date | None = None
    provisional: bool = False
    earliest_rule: str = ""
    latest_rule: str = ""

    def words(self) -> str:
        """The window in plain words for a member or an organiser."""
        parts = []
        if self.earliest:
            parts.append(f"最早 {self.earliest.isoformat()}")
        if self.latest:
            parts.append(f"最迟 {self.latest.isoformat()}")
        text = "，".join(parts) or "没有时间要求"
        return text + ("（暂定：节假日安排尚未公布）" if self.provisional else "")


def _interval_rule(rules: Rules, step: Step, interval: Interval, bound: str) -> str:
    source = rules.name(interval.source)
    if interval.source == PROBATION_END and interval.months < 0:
        return f"{step.rule}：{step.name}在{source}前 {interval.words()}内"
    if bound == "earliest" and not (interval.months or interval.days or interval.working_days):
        return f"{step.rule}：{step.name}须在{source}以后"
    if bound == "earliest":
        return f"{step.rule}：{step.name}须在{source}满 {interval.words()}后"
    return f"{step.rule}：{step.name}应在{source}后 {interval.words()}内"


def window(rules: Rules, history: History, step: Step) -> Window:
    """The dates this step answers to, given what is recorded (a recurring step: its next time)."""
    found = Window(step)
    earliest_rules = [step.earliest] if step.earliest else []
    if step.key == "activist" and rules.local.get("activist_after_apply_months"):
        earliest_rules.append(Interval("apply", months=int(rules.local["activist_after_apply_months"])))
    for interval in earliest_rules:
        start = anchor_date(rules, history, interval.source)
        if start is None:
            continue
        day, provisional = interval.after(start)
        if found.earliest is None or day > found.earliest:
            found.earliest, found.earliest_rule = day, _interval_rule(rules, step, interval, "earliest")
            if step.key == "activist" and interval.source == "apply" and interval is not step.earliest:
                found.earliest_rule = f"本校规则：入党积极分子须在递交申请书满 {interval.words()}后确定"
        found.provisional |= provisional
    for interval, attr in ((step.deadline, "latest"), (step.hard, "hard")):
        start = anchor_date(rules, history, interval.source) if interval else None
        if start is not None:
            day, provisional = interval.after(start)
            setattr(found, attr, day)
            found.provisional |= provisional
            if attr == "latest":
                found.latest_rule = _interval_rule(rules, step, interval, "latest")
    if step.recurring:
        last = history.last(step.key)
        start = last.on if last else anchor_date(rules, history, step.anchor)
        if start is not None:
            found.latest = start + relativedelta(months=step.every_months)
            found.latest_rule = f"{step.rule}：{step.name}每 {step.every_months} 个月一次"
    return found


# -- checking a date ------------------------------------------------------------------------------

def refusals(rules: Rules, history: History, key: str, on: date, ends_on: date | None = None,
             details: dict | None = None) -> list[str]:
    """Why recording step `key` on `on` is refused, each naming the rule; empty when it may be recorded."""
    if not rules.has(key):
        return ["没有这个步骤"]
    step, details, problems = rules.step(key), details or {}, []
    if step.once and history.has(key):
        return [f"“{step.name}”已经记录过了（{history.first(key).isoformat()}）；如需更正请先撤销"]
    for required in step.requires:
        if not history.has(required):
            problems.append(f"{step.rule}：须先记录“{rules.name(required)}”")
    if problems:
        return problems
    for required in step.requires:
        before = history.first(required)
        if on < before:
            problems.append(f"日期顺序：{step.name}（{on.isoformat()}）不能早于“{rules.name(required)}”"
                            f"（{before.isoformat()}）")
    if step.recurring and history.last(key) and on <= history.last(key).on:
        problems.append(f"日期顺序：上一次{step.name}是 {history.last(key).on.isoformat()}")
    found = window(rules, history, step)
    if found.earliest and on < found.earliest:
        problems.append(f"{found.earliest_rule}（最早 {found.earliest.isoformat()}）")
    if found.hard and on > found.hard:
        problems.append(f"{step.rule}：{step.name}最迟不超过 {found.hard.isoformat()}（特殊情况延长也不超过"
                        f"{step.hard.words()}）")
    elif found.hard and found.latest and on > found.latest and not details.get("special"):
        problems.append(f"{found.latest_rule}（最迟 {found.latest.isoformat()}）；确有特殊情况请勾选“特殊情况延长”")
    if step.window_days:
        if ends_on is None or ends_on < on:
            problems.append(f"{step.rule}：{step.name}须填写开始和结束日期")
        else:
            count, _provisional = working_days(on, ends_on)
            if count < step.window_days:
                problems.append(f"{step.rule}：{step.name}期不少于 {step.window_days} 个工作日"
                                f"（{on.isoformat()} 至 {ends_on.isoformat()} 只有 {count} 个工作日）")
    elif ends_on is not None and ends_on < on:
        problems.append("结束日期不能早于开始日期")
    if key == "branch_meeting" and rules.local.get("intake_months") and on.month not in rules.local["intake_months"]:
        months = "、".join(f"{m} 月" for m in rules.local["intake_months"])
        problems.append(f"本校规则：支部大会接收预备党员只在 {months}进行")
    if key == "pre_review" and history.leaves_on and history.leaves_on < on + relativedelta(months=3):
        problems.append(f"{step.rule}：预计 {history.leaves_on.isoformat()} 离校，不足 3 个月，不进行预审"
                        "（由接收单位党组织继续培养）")
    if key == "extension":
        low, high = rules.extension_months
        months = details.get("months")
        if not isinstance(months, int) or not low <= months <= high:
            problems.append(f"{step.rule}：预备期可以延长一次，时间不少于 {low} 个月、不超过 {high} 个月")
        end = probation_end(rules, history)
        if end and on > end + relativedelta(months=3):
            problems.append(f"{step.rule}：延长预备期须在预备期满后 3 个月内决定")
        if history.has("full_meeting"):
            problems.append("已经讨论过转正，不能再延长预备期")
    return problems


def late_by(rules: Rules, history: History, key: str, on: date) -> int:
    """Days past the step's due date (recorded late but allowed), 0 when on time."""
    found = window(rules, history, rules.step(key))
    return max(0, (on - found.latest).days) if found.latest else 0


# -- what comes next ------------------------------------------------------------------------------

@dataclass
class Due:
    step: Step
    window: Window

    @property
    def key(self) -> str:
        return self.step.key


def next_steps(rules: Rules, history: History) -> list[Due]:
    """The steps that may be recorded now or next: the first main-line steps whose requirements are
    met, and the recurring ones still running. Sorted by due date (undated last)."""
    items = []
    for step in rules.steps:
        if step.optional or (step.once and history.has(step.key)):
            continue
        if not all(history.has(r) for r in step.requires):
            continue
        if step.recurring and (history.has(step.until) or not history.has(step.anchor)):
            continue
        items.append(Due(step, window(rules, history, step)))
    return sorted(items, key=lambda d: (d.window.latest or d.window.earliest or date.max, d.step.recurring))


def current_stage(rules: Rules, history: History, before: str) -> str:
    """The 政治面貌 the recorded steps give (the last step with a stage), else what it was before."""
    stage = before
    for step in rules.steps:
        if step.stage and history.has(step.key):
            stage = step.stage
    return stage


def main_next(rules: Rules, history: History) -> Due | None:
    """The next step on the main line (what the board shows as 下一步)."""
    return next((d for d in next_steps(rules, history) if not d.step.recurring), None)


# -- dates as people type them --------------------------------------------------------------------

def parse_day(text) -> date | None:
    """A date in the formats Chinese spreadsheets and people use: 2026-03-15, 2026/3/15, 2026.3.15,
    2026年3月15日, 20260315, or a spreadsheet's own date; None when it is not one."""
    import re
    from datetime import datetime as _datetime
    if isinstance(text, _datetime):
        return text.date()
    if isinstance(text, date):
        return text
    text = str(text or "").strip()
    found = re.fullmatch(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?", text) or \
        re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)
    if not found:
        return None
    try:
        return date(*(int(part) for part in found.groups()))
    except ValueError:
        return None


def split_list(text: str) -> list[str]:
    """学号 or names as people separate them: commas (either width), 、, spaces, new lines."""
    import re
    return [part for part in re.split(r"[,，、;；\s]+", text or "") if part]


def earliest_path(rules: Rules, last: str, start: date, gap_days: int = 0) -> History:
    """The main line from an application on `start` up to and including step `last`, each step
    `gap_days` after the first day the rules allow it (demo data; a 公示 lasts its working days)."""
    history = History([])
    for step in rules.main_line:
        found = window(rules, history, step)
        on = max([history.first(r) for r in step.requires] + [found.earliest or start])
        on += timedelta(days=gap_days if step.key != "apply" else 0)
        if found.latest and on > found.latest:
            on = max([history.first(r) for r in step.requires] + [found.latest])
        ends_on = nth_working_day(on, step.window_days)[0] if step.window_days else None
        history.done.append(Done(step.key, on, ends_on))
        if step.key == last:
            break
    return history
