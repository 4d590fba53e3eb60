"""Screening: the matcher sees through evasions, list files are checked line by line and reloaded
when they change, and personal data is masked."""
import os
import time

import pytest

from models.screening import ListFolder, Screener, mask_personal, normalise, parse_list


def screener(**lists) -> Screener:
    parsed = [parse_list(f"{name}.txt", text)[0] for name, text in lists.items()]
    return Screener(parsed)


LISTS = {"违禁": "@action block\n违禁词\n", "待审": "@action hold\n敏感话题\n", "提示": "@action flag\n广告\nSpam\n"}


@pytest.mark.parametrize("text", [
    "这里有违禁词", "这里有违 禁 词", "这里有違禁詞", "违*禁-词", "违😀禁🚩词", "违\u3000禁\u3000词", "ＳＰＡＭ广告",
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


def test_a_bad_list_file_is_reported_by_line_and_the_others_still_work(tmp_path):
    (tmp_path / "good.txt").write_text("@action block\n违禁词\n", encoding="utf-8")
    (tmp_path / "bad.txt").write_text("@action block\n正常\n@action explode\n！！\n", encoding="utf-8")
    folder = ListFolder(tmp_path)
    current = folder.current(time.monotonic())
    assert current.screen("违禁词").action == "block" and current.screen("正常").action == "pass"
    assert [str(e) for e in folder.errors] == ["bad.txt 第 3 行：应为 @action 加 block、hold、flag 之一",
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
    ("身份证 11010519491231002X", "身份证 110105********002X", "身份证号"),
    ("卡号 6222020200112233445", "卡号 ****3445", "银行卡号"),
    ("邮箱 zhangsan@example.edu.cn", "邮箱 z***@example.edu.cn", "邮箱"),
])
def test_personal_data_is_masked(text, masked, kind):
    assert mask_personal(text) == (masked, [kind])
