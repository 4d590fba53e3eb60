"""Screening what members post: word lists by category, each with an action, matched by Aho-Corasick
(ahocorasick-rs) on a normalised text that sees through the usual evasions; and the masking of
personal data.

Normalisation: NFKC (full-width letters and digits, Kangxi radicals, CJK compatibility ideographs,
mathematical letters become their ordinary forms); then, in one table lookup per character,
Unicode's confusables (confusable-homoglyphs' copy of confusables.txt) for letters of other scripts
that look like Latin ones (Cyrillic "ѕраm" reads "spam") and for radicals that look like CJK
characters, traditional characters simplified (OpenCC's character table), capitals made small; then
everything that is not a letter, a digit or a CJK character is removed (spaces, punctuation, emoji
and symbols put between the characters of a word); last, letters of another script slipped between
two CJK characters (a katakana ー in 违ー禁) are dropped (not Latin letters or digits: Chinese text
mixes those in). The word lists are normalised the same way,
so "党 员", "黨員", "党*员", "党😀员" and "党ー员" all match "党员".

Each Chinese word also matches its pinyin written in Latin letters ("wei jin" for 违禁), computed when
the list loads (pypinyin); a list can turn that off. A member's consecutive posts are screened
together too (a word split across two posts), by screen_joined.

A list folder holds one file per category, `<category>.txt`: a line `@action block|hold|flag`,
optionally `@pinyin off`, then one word per line (`#` starts a comment). A bad file is reported with
its line number and left out; the other lists still work.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import ahocorasick_rs

ACTIONS = {"block": "拦截", "hold": "待审核", "flag": "标记"}
SEVERITY = {"pass": 0, "flag": 1, "hold": 2, "block": 3}
_NOT_WORD = re.compile(r"[\W_]+")
_CJK = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"  # with the extensions (OpenCC uses them)
# One or two letters of a script that is neither CJK nor Latin (kana, Hangul ...) between two CJK
# characters: slipped in to break a word. Latin letters and digits stay: Chinese text mixes them in
# ("选项A", "B站", "第3版") and dropping them would join words that were apart.
_SLIPPED_IN = re.compile(f"(?<=[{_CJK}])[^{_CJK}0-9a-z]{{1,2}}(?=[{_CJK}])")
_ONE_CJK = re.compile(f"[{_CJK}]")
_FOREIGN = re.compile(f"[^{_CJK}0-9a-z]")
PINYIN_MIN = 5  # shorter pinyin keys ("ai") would match inside ordinary Latin words


def _is_cjk(char: str) -> bool:
    return bool(_ONE_CJK.fullmatch(char))


@lru_cache(maxsize=1)
def _table() -> dict[int, str]:
    """One translation table doing all the per-character steps at once: NFKC of each character (in
    the blocks where it changes anything), then Unicode's confusables (to Latin letters and digits,
    radicals to CJK characters), OpenCC's traditional-to-simplified characters (TSCharacters, first
    choice), capitals to small. A table lookup costs the same for every character, where NFKC of a
    whole post with full-width punctuation would cost more than the matching."""
    import opencc
    second = _confusables()
    path = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        traditional, _, simplified = line.partition("\t")
        if len(traditional) == 1 and simplified:
            second[ord(traditional)] = simplified.split()[0]
    for code in range(ord("A"), ord("Z") + 1):
        second[code] = chr(code).lower()
    table = dict(second)
    for block in NFKC_BLOCKS:
        for code in block:
            char = chr(code)
            composed = unicodedata.normalize("NFKC", char)
            if composed != char:
                table[code] = composed.translate(second)
    return table


# Where NFKC of a single character changes it: the BMP, mathematical letters and digits, enclosed
# alphanumerics, CJK compatibility ideographs (a letter followed by a combining mark is not composed;
# the mark is dropped with the symbols).
NFKC_BLOCKS = (range(0x80, 0x10000), range(0x1D400, 0x1D800), range(0x1F100, 0x1F200), range(0x2F800, 0x2FA20))


def _confusables() -> dict[int, str]:
    """Characters that look like an ASCII letter or digit (a Cyrillic а, a Greek ο), and radicals that
    look like a CJK character, to what they look like. Never the other way, and never kana or Hangul
    to a CJK character (ー is not 一): those are dropped between CJK characters instead."""
    import confusable_homoglyphs
    data = json.loads((Path(confusable_homoglyphs.__file__).parent / "confusables.json").read_text(encoding="utf-8"))
    table = {}
    for char, lookalikes in data.items():
        if len(char) != 1 or char.isascii() or "\u3000" <= char <= "\ufaff" or char >= "\U00020000":
            continue  # nothing of CJK, kana or Hangul reads as Latin (〇 stays a zero of 二〇二六)
        radical = "\u2e80" <= char <= "\u2fdf"
        for lookalike in lookalikes:
            target = lookalike["c"]
            if len(target) != 1:
                continue
            if (target.isascii() and target.isalnum() and unicodedata.category(char)[0] in "LN") or \
                    (radical and _is_cjk(target)):
                table[ord(char)] = target.lower()
                break
    return table


def normalise(text: str) -> str:
    text = _NOT_WORD.sub("", text.translate(_table()))
    return _SLIPPED_IN.sub("", text) if _FOREIGN.search(text) else text


def pinyin_of(word: str) -> str:
    """A Chinese word in Latin letters without tones ("违禁" -> "weijin"); "" when it holds no CJK
    character or its pinyin is too short to tell apart from ordinary Latin text."""
    from pypinyin import lazy_pinyin
    key = normalise(word)
    if not any(_is_cjk(c) for c in key):
        return ""
    spelled = normalise("".join(lazy_pinyin(key)))
    return spelled if len(spelled) >= PINYIN_MIN and spelled.isascii() else ""


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
    pinyin: bool = True  # each Chinese word matches its pinyin too


def parse_list(name: str, text: str) -> tuple[WordList | None, list[ListError]]:
    """One list file; (None, errors) when it is bad."""
    category, action, words, errors, pinyin = Path(name).stem, "", [], [], True
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("@"):
            key, _, value = line[1:].partition(" ")
            if key == "pinyin" and value.strip() in ("on", "off"):
                pinyin = value.strip() == "on"
            elif key != "action" or value.strip() not in ACTIONS:
                errors.append(ListError(name, number, f"应为 @action 加 {'、'.join(ACTIONS)} 之一，或 @pinyin on|off"))
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
    return (None, errors) if errors else (WordList(category, action, tuple(words), pinyin), [])


@dataclass(frozen=True)
class Hit:
    category: str
    action: str
    word: str  # as the list writes it
    how: str = ""  # "" the word itself; 拼音 its pinyin; 连续发言 across the author's consecutive posts


@dataclass(frozen=True)
class Verdict:
    action: str  # pass | flag | hold | block: the most severe of the hits
    hits: tuple[Hit, ...] = ()

    @property
    def words(self) -> list[str]:
        return sorted({h.word for h in self.hits})


class Screener:
    """The lists, compiled into one automaton (each word, and the pinyin of each Chinese word)."""

    def __init__(self, lists: list[WordList]):
        hits: dict[str, list[Hit]] = {}
        for word_list in lists:
            for word in word_list.words:
                hits.setdefault(normalise(word), []).append(Hit(word_list.category, word_list.action, word))
                spelled = pinyin_of(word) if word_list.pinyin else ""
                if spelled:
                    hits.setdefault(spelled, []).append(Hit(word_list.category, word_list.action, word, "拼音"))
        self.keys = list(hits)
        self.hits = [tuple(hits[key]) for key in self.keys]
        self.size = sum(len(word_list.words) for word_list in lists)
        self.automaton = ahocorasick_rs.AhoCorasick(self.keys, matchkind=ahocorasick_rs.MatchKind.Standard) \
            if self.keys else None

    def screen(self, text: str) -> Verdict:
        return verdict_of(self._found(normalise(text)))

    def screen_joined(self, text: str, before: list[str]) -> Verdict:
        """`text`, and `text` read on from the author's posts just `before` it (oldest first): a word
        split across posts is found, marked 连续发言, when no post alone and not the earlier ones alone hold it."""
        alone = self._found(normalise(text))
        if not before:
            return verdict_of(alone)
        earlier = "".join(normalise(t) for t in before)
        joined = self._found(earlier + normalise(text)) - self._found(earlier) - alone
        split = {Hit(h.category, h.action, h.word, "连续发言") for h in joined}
        return verdict_of(alone | split)

    def _found(self, normalised: str) -> set[Hit]:
        if self.automaton is None or not normalised:
            return set()
        matches = self.automaton.find_matches_as_indexes(normalised, overlapping=True)
        return {hit for index, _start, _end in matches for hit in self.hits[index]}


def verdict_of(found: set[Hit]) -> Verdict:
    if not found:
        return Verdict("pass")
    action = max((h.action for h in found), key=SEVERITY.__getitem__)
    return Verdict(action, tuple(sorted(found, key=lambda h: (h.category, h.word, h.how))))


# The key under which an app's sessions carry its word lists (a function giving the current Screener),
# so that code holding only a session (the one place campaigns are made) screens with them.
SCREENER_KEY = "wxbot.screener"


def screener_of(session) -> Screener:
    """The word lists of the app that made `session` (none for a session made outside an app)."""
    provider = session.info.get(SCREENER_KEY)
    return provider() if provider is not None else Screener([])


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
# Found on the text as screening sees it, character by character (full-width digits, the ideographic
# space, full-width hyphens read as ASCII), with the separators people put in numbers allowed between
# any two digits; what is masked is mapped back onto the characters as written.

_SEP = "[ \\-.\u2013\u2014]?"
_PERSONAL = [
    ("身份证号", re.compile(rf"(?<![0-9])[1-9](?:{_SEP}[0-9]){{16}}{_SEP}[0-9x](?![0-9])")),
    ("银行卡号", re.compile(rf"(?<![0-9])[0-9](?:{_SEP}[0-9]){{15,18}}(?![0-9])")),
    ("手机号", re.compile(rf"(?<![0-9+])(?:(?:\+|00)?86{_SEP})?1[3-9](?:{_SEP}[0-9]){{9}}(?![0-9])")),
    ("邮箱", re.compile(r"([a-z0-9._%+-])[a-z0-9._%+-]*@[a-z0-9.-]+\.[a-z]{2,}")),
]
_BIRTH_DATE = re.compile(r"(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")


def _char_view(text: str) -> str:
    """The text as screening reads it, one character for one (a character whose reading is longer
    stays as it is), so that positions map back to the text as written."""
    table = _table()
    view = []
    for char in text:
        read = table.get(ord(char), char)
        view.append(read if isinstance(read, str) and len(read) == 1 else char)
    return "".join(view)


def mask_personal(text: str) -> tuple[str, list[str]]:
    """The text with mobile numbers (with +86, spaces or hyphens, full-width digits), ID card numbers,
    bank card numbers and e-mail addresses masked, and the kinds found."""
    view, edits, kinds = _char_view(text), [], []
    for kind, pattern in _PERSONAL:
        found = [m for m in pattern.finditer(view) if _is_personal(kind, m)]
        for match in found:
            edits += _masking(kind, match)
            view = view[:match.start()] + "#" * (match.end() - match.start()) + view[match.end():]  # taken
        if found:
            kinds.append(kind)
    masked = list(text)
    for start, end, replacement in sorted(edits, reverse=True):
        masked[start:end] = [replacement]
    return "".join(masked), kinds


def _is_personal(kind: str, match: re.Match) -> bool:
    return kind != "身份证号" or bool(_BIRTH_DATE.fullmatch(_digits(match)[6:14]))


def _digits(match: re.Match) -> str:
    return "".join(c for c in match.group(0) if c.isdigit() or c == "x")


def _masking(kind: str, match: re.Match) -> list[tuple[int, int, str]]:
    """What to write over the text as written: (start, end, replacement) edits."""
    if kind == "邮箱":
        local_end = match.start() + match.group(0).index("@")
        return [(match.start(1) + 1, local_end, "***")]
    places = [match.start() + i for i, c in enumerate(match.group(0)) if c.isdigit() or c == "x"]
    if kind == "手机号":
        hidden = places[-11:][3:7]  # 138****5678, after any +86
    elif kind == "身份证号":
        hidden = places[6:14]  # the birth date
    else:  # a bank card: only its last four digits
        return [(places[0], places[-4], "****")]
    return [(i, i + 1, "*") for i in hidden]
