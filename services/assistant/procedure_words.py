"""Procedure words in a question, read as ICD-10-PCS characters: the approach (5th
character of the Medical and Surgical section) and the root operation (3rd)."""

from __future__ import annotations

from services.assistant.reading import has, words

# Words that name a procedure's approach (5th character of the Medical and Surgical
# section), from the PCS approach definitions.
APPROACH_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("laparoscop*", "thoracoscop*", "arthroscop*", "robotic*", "robot-assisted",
      "percutaneous endoscopic", "minimally invasive", "mediastinoscop*", "pelviscop*"), "4"),
    (("via natural or artificial opening endoscopic", "colonoscop*", "cystoscop*",
      "bronchoscop*", "esophagoscop*", "gastroscop*", "egd", "hysteroscop*", "ureteroscop*",
      "sigmoidoscop*", "endoscopic", "endoscopy", "esophagogastroduodenoscop*"), "8"),
    (("transurethral", "transvaginal", "transoral", "via natural", "natural opening"), "7"),
    (("open", "laparotomy", "thoracotomy", "incision"), "0"),
    (("percutaneous", "needle", "endovascular"), "3"),
    (("external", "skin surface"), "X"),
)
PARTIAL_WORDS = ("partial", "subtotal", "biopsy", "wedge", "segmental", "portion", "part of",
                 "excision", "lumpectomy")


def approach(subject: str) -> str | None:
    for cues, value in APPROACH_WORDS:
        if has(subject, *cues):
            return value
    return None


def operations(subject: str) -> set[str]:
    """Root operations the words point to: -ectomy is Resection (T) unless partial,
    then Excision (B); -scopy alone is Inspection (J)."""
    found: set[str] = set()
    ws = words(subject)
    if any(w.endswith(("ectomy", "ectomies")) for w in ws) or has(subject, "removal",
                                                                 "resection"):
        found.add("B" if has(subject, *PARTIAL_WORDS) else "T")
    if (any(w.endswith("scopy") for w in ws) and not found) or has(subject, "inspection"):
        found.add("J")
    return found


def names_device(subject: str, title: str) -> bool:
    return bool({w for w in words(subject) if len(w) > 3} & set(words(title.split(" with ")[-1])))
