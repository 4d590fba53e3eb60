"""Screening: the matcher sees through evasions, list files are checked line by line and reloaded
when they change, and personal data is masked."""
import os
import time
from pathlib import Path

import pytest

from models.screening import ListFolder, Screener, mask_personal, normalise, parse_list


def screener(**lists) -> Screener:
    parsed = [parse_list(f"{name}.txt", text)[0] for name, text in lists.items()]
    return Screener(parsed)


LISTS = {"违禁": "@action block\n违禁词\n", "待审": "@action hold\n敏感话题\n", "提示": "@action flag\n广告\nSpam\n"}


@pytest.mark.parametrize("text", [
    "这里有违禁词", "这里有违 禁 词", "这里有違禁詞", "违*禁-词", "违😀禁🚩词", "违\u3000禁\u3000词", "ＳＰＡＭ广告",
    "违禁\u8a5e", "违ー禁词", "违ーー禁词", "违ㅋ禁词", "ѕраm 推送", "𝐬𝐩𝐚𝐦", "wei jin ci", "Wei-Jin-Ci",
])
def test_evasions_are_seen_through(text):
    verdict = screener(**LISTS).screen(text)
    assert verdict.action in ("block", "flag")
    assert verdict.hits


def test_the_most_severe_action_wins_and_what_matched_is_recorded():
    verdict = screener(**LISTS).screen("广告：讨论敏感话题，还有违禁词")
    assert verdict.action == "block"
    assert {(h.category, h.word) for h in verdict.hits} == {("违禁", "违禁词"), ("待审", "敏感话题"), ("提示", "广告")}
    assert screener(**LISTS).screen("好好学习党章").action == "pass"
    assert screener(**LISTS).screen("Spam 邮件").action == "flag"  # mixed case


def test_normalise_folds_width_case_traditional_and_symbols():
    assert normalise("黨員 ＡＢＣ！") == "党员abc"


@pytest.mark.parametrize(("lookalike", "plain"), [
    ("违禁⽰例词", "违禁示例词"),  # a Kangxi radical
    ("违禁示\uf9b5词", "违禁示例词"),  # a CJK compatibility ideograph
    ("违ー禁示例词", "违禁示例词"),  # katakana slipped in between
    ("ѕраmlink", "spamlink"),  # Cyrillic letters
])
def test_lookalikes_read_as_the_characters_they_imitate(lookalike, plain):
    assert normalise(lookalike) == normalise(plain)
    verdict = screener(违禁=f"@action block\n{plain}\n").screen(f"留言 {lookalike}")
    assert verdict.action == "block"


def plainly(text: str) -> str:
    """What ordinary text was always read as: its letters, digits and characters, symbols removed."""
    import unicodedata
    return "".join(c for c in unicodedata.normalize("NFKC", text).lower() if c.isalnum())


ORDINARY = ["希望下周的主题党日安排在周五下午，大家都有空。", "选项A和选项B都不对，应该选C。",
            "我在B站看了党史微课，讲得很好！", "2026年12月3日14:00，在302教室开支部大会。", "第3版教材P45页有解释。",
            "学习强国上的“四史”专题值得一看。",
            "食堂太挤了，能不能错峰？", "二〇二六年度组织生活会", "请假：和专业课实验冲突（周四 8:00-10:00）"]


def test_ordinary_text_reads_as_it_always_did(app):
    """No new false positives: the demo school's materials and questions and everyday posts are read
    letter for letter, digit for digit, character for character (only symbols and spaces drop)."""
    from wxbot.demo import DEMO_MATERIALS, _demo_body
    from wxbot.demo_data import __path__ as demo_data
    questions = (Path(demo_data[0]) / "questions.csv").read_text(encoding="utf-8").splitlines()
    texts = ORDINARY + questions + [f"{t} {s} {_demo_body(t, s)}" for t, s, _source in DEMO_MATERIALS]
    for text in texts:
        assert normalise(text) == plainly(text), text


def test_a_listed_words_pinyin_matches_unless_the_list_turns_it_off():
    on = screener(违禁="@action block\n违禁示例词\n")
    verdict = on.screen("wei jin shi li ci")
    assert verdict.action == "block" and [(h.word, h.how) for h in verdict.hits] == [("违禁示例词", "拼音")]
    off = screener(违禁="@action block\n@pinyin off\n违禁示例词\n")
    assert off.screen("wei jin shi li ci").action == "pass" and off.screen("违禁示例词").action == "block"
    assert on.screen("The Weijin dynasty").action == "pass"  # "weijin" alone is not the word


def test_a_word_split_across_consecutive_posts_is_found_together():
    lists = screener(违禁="@action block\n违禁示例词\n")
    assert lists.screen("例词").action == "pass"
    verdict = lists.screen_joined("例词", ["违禁示"])
    assert verdict.action == "block" and verdict.hits[0].how == "连续发言"
    assert lists.screen_joined("我同意", ["违禁示"]).action == "pass"


def test_a_bad_list_file_is_reported_by_line_and_the_others_still_work(tmp_path):
    (tmp_path / "good.txt").write_text("@action block\n违禁词\n", encoding="utf-8")
    (tmp_path / "bad.txt").write_text("@action block\n正常\n@action explode\n！！\n", encoding="utf-8")
    folder = ListFolder(tmp_path)
    current = folder.current(time.monotonic())
    assert current.screen("违禁词").action == "block" and current.screen("正常").action == "pass"
    assert [str(e) for e in folder.errors] == [
        "bad.txt 第 3 行：应为 @action 加 block、hold、flag 之一，或 @pinyin on|off",
        "bad.txt 第 4 行：“！！”去掉空格和符号后是空的"]


def test_lists_reload_when_their_files_change(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("@action hold\n旧词\n", encoding="utf-8")
    folder = ListFolder(tmp_path, check_seconds=0)
    assert folder.current(time.monotonic()).screen("新词").action == "pass"
    path.write_text("@action hold\n旧词\n新词\n", encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert folder.current(time.monotonic()).screen("新词").action == "hold"


@pytest.mark.parametrize(("text", "masked", "kind"), [
    ("电话 13812345678 找我", "电话 138****5678 找我", "手机号"),
    ("电话 138-1234-5679", "电话 138-****-5679", "手机号"),
    ("电话 139 8765 4321", "电话 139 **** 4321", "手机号"),
    ("电话 １３７１２３４５６７８", "电话 １３７****５６７８", "手机号"),
    ("电话 +86 138 1234 5678", "电话 +86 138 **** 5678", "手机号"),
    ("电话 8613812345678", "电话 86138****5678", "手机号"),
    ("身份证 11010519491231002X", "身份证 110105********002X", "身份证号"),
    ("身份证 110101 19900307 1234", "身份证 110101 ******** 1234", "身份证号"),
    ("卡号 6222020200112233445", "卡号 ****3445", "银行卡号"),
    ("卡号 6222 0202 0011 2233", "卡号 ****2233", "银行卡号"),
    ("邮箱 zhangsan@example.edu.cn", "邮箱 z***@example.edu.cn", "邮箱"),
])
def test_personal_data_is_masked(text, masked, kind):
    assert mask_personal(text) == (masked, [kind])


@pytest.mark.parametrize("text", ["2026年12月3日 14:00 在302开会", "学号 2024001，房间 1301", "qq 群 123456789",
                                  "订单 202612031234567890123"])
def test_ordinary_numbers_are_left_alone(text):
    assert mask_personal(text) == (text, [])
