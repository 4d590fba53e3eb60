"""Screening what members post: word lists by category, each with an action, matched by Aho-Corasick
(ahocorasick-rs) on a normalised text that sees through the usual evasions; and the masking of
personal data.

Normalisation, in one table lookup per character: full-width letters, digits and punctuation become
half-width, letters lower case, traditional characters simplified (OpenCC's character table); then
everything that is not a letter, a digit or a CJK character is removed (spaces, punctuation, emoji
and symbols put between the characters of a word). The word lists are normalised the same way, so
"党 员", "黨員", "党*员" and "党😀员" all match "党员".

A list folder holds one file per category, `<category>.txt`: a line `@action block|hold|flag`, then
one word per line (`#` starts a comment). A bad file is reported with its line number and left out;
the other lists still work.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import ahocorasick_rs

ACTIONS = {"block": "拦截", "hold": "待审核", "flag": "标记"}
SEVERITY = {"pass": 0, "flag": 1, "hold": 2, "block": 3}
_NOT_WORD = re.compile(r"[\W_]+")


@lru_cache(maxsize=1)
def _table() -> dict[int, str]:
    """One translation table: OpenCC's traditional-to-simplified characters (TSCharacters, first
    choice), full-width ASCII to half-width, the ideographic space to a space, capitals to small."""
    import opencc
    path = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        traditional, _, simplified = line.partition("\t")
        if len(traditional) == 1 and simplified:
            table[ord(traditional)] = simplified.split()[0]
    for code in range(0xFF01, 0xFF5F):
        table[code] = chr(code - 0xFEE0).lower()
    table[0x3000] = " "
    for code in range(ord("A"), ord("Z") + 1):
        table[code] = chr(code).lower()
    return table


def normalise(text: str) -> str:
    return _NOT_WORD.sub("", text.translate(_table()))


@dataclass(frozen=True)
class ListError:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file} 第 {self.line} 行：{self.reason}"


@dataclass(frozen=True)
class WordList:
    category: str
    action: str
    words: tuple[str, ...]


def parse_list(name: str, text: str) -> tuple[WordList | None, list[ListError]]:
    """One list file; (None, errors) when it is bad."""
    category, action, words, errors = Path(name).stem, "", [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("@"):
            key, _, value = line[1:].partition(" ")
            if key != "action" or value.strip() not in ACTIONS:
                errors.append(ListError(name, number, f"应为 @action 加 {'、'.join(ACTIONS)} 之一"))
            else:
                action = value.strip()
            continue
        if not action:
            errors.append(ListError(name, number, "第一条词之前要先写 @action block|hold|flag"))
            continue
        if not normalise(line):
            errors.append(ListError(name, number, f"“{line}”去掉空格和符号后是空的"))
            continue
        words.append(line)
    if not action and not errors:
        errors.append(ListError(name, 1, "缺少 @action 行"))
    return (None, errors) if errors else (WordList(category, action, tuple(words)), [])


@dataclass(frozen=True)
class Hit:
    category: str
    action: str
    word: str  # as the list writes it


@dataclass(frozen=True)
class Verdict:
    action: str  # pass | flag | hold | block: the most severe of the hits
    hits: tuple[Hit, ...] = ()

    @property
    def words(self) -> list[str]:
        return sorted({h.word for h in self.hits})


class Screener:
    """The lists, compiled into one automaton."""

    def __init__(self, lists: list[WordList]):
        hits: dict[str, list[Hit]] = {}
        for word_list in lists:
            for word in word_list.words:
                hits.setdefault(normalise(word), []).append(Hit(word_list.category, word_list.action, word))
        self.keys = list(hits)
        self.hits = [tuple(hits[key]) for key in self.keys]
        self.size = sum(len(h) for h in self.hits)
        self.automaton = ahocorasick_rs.AhoCorasick(self.keys, matchkind=ahocorasick_rs.MatchKind.Standard) \
            if self.keys else None

    def screen(self, text: str) -> Verdict:
        if self.automaton is None:
            return Verdict("pass")
        matches = self.automaton.find_matches_as_indexes(normalise(text), overlapping=True)
        if not matches:
            return Verdict("pass")
        found = {hit for index, _start, _end in matches for hit in self.hits[index]}
        action = max((h.action for h in found), key=SEVERITY.__getitem__)
        return Verdict(action, tuple(sorted(found, key=lambda h: (h.category, h.word))))


@dataclass
class ListFolder:
    """The list files of a folder, compiled again when any file changes (checked on use, at most once
    every `check_seconds`)."""

    path: Path
    check_seconds: float = 2.0
    screener: Screener = field(default_factory=lambda: Screener([]))
    errors: list[ListError] = field(default_factory=list)
    _stamp: tuple = ()
    _checked: float = -1e9

    def current(self, now: float) -> Screener:
        if now - self._checked >= self.check_seconds:
            self._checked = now
            stamp = self._files_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                self._load()
        return self.screener

    def _files_stamp(self) -> tuple:
        if not self.path.is_dir():
            return ()
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in self.path.glob("*.txt")))

    def _load(self) -> None:
        lists, errors = [], []
        for file in sorted(self.path.glob("*.txt")) if self.path.is_dir() else []:
            try:
                text = file.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):
                errors.append(ListError(file.name, 1, "无法读取（需要 UTF-8 编码的文本文件）"))
                continue
            word_list, problems = parse_list(file.name, text)
            errors += problems
            if word_list is not None:
                lists.append(word_list)
        self.screener, self.errors = Screener(lists), errors


# ---- personal data ----

_ID_CARD = (r"(?<![0-9])([1-9]\d{5})(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx]"
            r"(?![0-9])")
_PERSONAL = [
    ("身份证号", re.compile(_ID_CARD), lambda m: f"{m.group(1)}********{m.group(0)[-4:]}"),
    ("手机号", re.compile(r"(?<![0-9])(1[3-9]\d)\d{4}(\d{4})(?![0-9])"), lambda m: f"{m.group(1)}****{m.group(2)}"),
    ("银行卡号", re.compile(r"(?<![0-9])\d{12,15}(\d{4})(?![0-9])"), lambda m: f"****{m.group(1)}"),
    ("邮箱", re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+\.[A-Za-z]{2,})"),
     lambda m: f"{m.group(1)}***{m.group(2)}"),
]


def mask_personal(text: str) -> tuple[str, list[str]]:
    """The text with mobile numbers, ID card numbers, bank card numbers and e-mail addresses masked,
    and the kinds found."""
    kinds = []
    for kind, pattern, replace in _PERSONAL:
        text, count = pattern.subn(replace, text)
        if count:
            kinds.append(kind)
    return text, kinds
