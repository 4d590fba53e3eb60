"""Screening speed: a 20,000-word list and 10,000 posts of about 500 characters, normalisation on
(NFKC, width, case, traditional characters, Unicode's confusables, symbols between characters,
letters of other scripts slipped between CJK characters) and pinyin on, on one core.

The product's matcher (models/screening.py: ahocorasick-rs over the normalised text, each word and
its pinyin) against the naive baseline a user would write: normalise the post the same way, then
check each word and each word's pinyin with `in`. Both must find the same words. Prints posts/s for
each, the ratio, the list's load time, and the verdicts on the targets (>= 100x the naive baseline, >= 5,000 posts/s).
Usage: .venv/bin/python bench/screening.py [--words 20000] [--posts 10000]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.screening import Screener, WordList, normalise, pinyin_of  # noqa: E402

COMMON = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种"
          "面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本"
          "去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比"
          "或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总"
          "次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做"
          "必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权"
          "收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信"
          "马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连"
          "断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存"
          "候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严")


def make_words(rng: random.Random, count: int) -> list[str]:
    """Listed words are specific terms: 2 to 4 characters drawn from the whole CJK block, so that
    ordinary text rarely contains one by chance (as with a real list)."""
    words = set()
    while len(words) < count:
        words.add("".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(rng.choice((2, 3, 3, 4)))))
    return sorted(words)


def make_posts(rng: random.Random, words: list[str], count: int, length: int = 500) -> list[str]:
    """Ordinary text, with a listed word (written with an evasion) in about one post in five."""
    from pypinyin import lazy_pinyin
    evasions = [lambda w: w, lambda w: " ".join(w), lambda w: "*".join(w), lambda w: "😀".join(w),
                lambda w: "".join(reversed_simplified.get(c, c) for c in w), lambda w: w.upper(),
                lambda w: "ー".join(w), lambda w: " ".join(lazy_pinyin(w))]
    from models.screening import _table
    reversed_simplified = {simplified: chr(traditional) for traditional, simplified in _table().items()
                           if len(simplified) == 1 and 0x4E00 <= traditional <= 0x9FFF}
    posts = []
    for n in range(count):
        text = "".join(rng.choice(COMMON + "，。！？ ") for _ in range(length))
        if n % 5 == 0:
            at = rng.randrange(length)
            text = text[:at] + rng.choice(evasions)(rng.choice(words)) + text[at:]
        posts.append(text)
    return posts


def naive(words: list[str], posts: list[str]) -> list[set[str]]:
    normalised = [(w, normalise(w)) for w in words] + [(w, p) for w in words if (p := pinyin_of(w))]
    found = []
    for post in posts:
        text = normalise(post)
        found.append({w for w, key in normalised if key in text})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=int, default=20000)
    parser.add_argument("--posts", type=int, default=10000)
    parser.add_argument("--naive-posts", type=int, default=200, help="posts for the (slow) naive baseline")
    args = parser.parse_args()
    rng = random.Random(20261126)
    words = make_words(rng, args.words)
    posts = make_posts(rng, words, args.posts)
    started = time.perf_counter()
    screener = Screener([WordList("bench", "hold", tuple(words))])
    load = time.perf_counter() - started

    started = time.perf_counter()
    verdicts = [screener.screen(post) for post in posts]
    fast_seconds = time.perf_counter() - started
    fast_rate = len(posts) / fast_seconds

    sample = posts[:args.naive_posts]
    started = time.perf_counter()
    slow = naive(words, sample)
    naive_rate = len(sample) / (time.perf_counter() - started)
    agree = all(set(v.words) == s for v, s in zip(verdicts, slow, strict=False))

    caught = sum(1 for v in verdicts if v.action != "pass")
    print(f"\nscreening benchmark: {len(words)} words, {len(posts)} posts of ~500 characters, normalisation "
          f"(NFKC, confusables, slipped-in letters) and pinyin on, one core")
    print(f"list load (normalise, pinyin of each word, build the automaton): {load * 1000:.0f} ms")
    print(f"ahocorasick-rs: {fast_rate:,.0f} posts/s ({1e6 / fast_rate:.0f} µs per post); posts with a hit: {caught}")
    print(f"naive (`in` per word, {len(sample)} posts): {naive_rate:,.1f} posts/s")
    print(f"same words found on the naive sample: {'yes' if agree else 'NO'}")
    ratio = fast_rate / naive_rate
    print(f"ratio: {ratio:,.0f}x")
    print(f"target: >= 100x the naive baseline: {ratio:,.0f}x -> {'met' if ratio >= 100 else 'NOT met'}")
    print(f"target: >= 5,000 posts/s on one core: {fast_rate:,.0f} -> {'met' if fast_rate >= 5000 else 'NOT met'}")


if __name__ == "__main__":
    main()
