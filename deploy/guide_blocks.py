"""Write every fenced block of docs/部署.md to a file named by its section and place (sec3-1.txt,
sec4-2.ini ...), so that the rehearsal runs the guide's own commands and files, not a copy of them.
Usage: python3 deploy/guide_blocks.py docs/部署.md OUT_DIR"""
import os
import re
import sys


def main(guide: str, out: str) -> None:
    with open(guide, encoding="utf-8") as f:
        text = f.read()
    os.makedirs(out, exist_ok=True)
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        number = section.split(".", 1)[0]
        for place, (language, body) in enumerate(re.findall(r"^```(\w*)\n(.*?)^```", section, re.S | re.M), 1):
            with open(os.path.join(out, f"sec{number}-{place}.{language or 'txt'}"), "w", encoding="utf-8") as f:
                f.write(body)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
