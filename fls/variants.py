"""Variants of Table 4: which gaze alignment and which metric protocol a score used.

The paper's Table 4 is ``authors-authors`` (the authors' one-frame-early gaze, their metric edge cases).
Each correction changes one of the two: ``aligned-authors`` fixes only the gaze, ``authors-fls`` only the
metric choices, ``aligned-fls`` both. ``score_corrected`` stages write under
``scores/corrected/<variant>/<arch>/<game>/<seed>/`` so the report can print what each correction moves.
"""

from __future__ import annotations

ALIGNMENTS = ("authors", "aligned")
PROTOCOLS = ("authors", "fls")
PAPER_VARIANT = "authors-authors"


def parse_variant(variant: str) -> tuple[str, str]:
    """``"<alignment>-<protocol>"`` -> (alignment, protocol); ValueError naming the expected forms."""
    alignment, sep, protocol = str(variant).partition("-")
    if not sep or alignment not in ALIGNMENTS or protocol not in PROTOCOLS:
        forms = [f"{a}-{p}" for a in ALIGNMENTS for p in PROTOCOLS]
        raise ValueError(f"variant {variant!r} is not <alignment>-<protocol> (one of {forms})")
    return alignment, protocol


def variant_name(alignment: str, protocol: str) -> str:
    name = f"{alignment}-{protocol}"
    parse_variant(name)
    return name
