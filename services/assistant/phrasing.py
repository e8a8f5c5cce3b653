"""How the offline composer words what a code's entry says: note labels, kinds of
entry, seventh characters, PCS axes, release history."""

from __future__ import annotations

from services.lookup.values import CodeDetail

NOTE_LABELS = {
    "excludes1": "Excludes1 (not coded here: never reported together)",
    "excludes2": "Excludes2 (not included here: both may be reported when both are present)",
    "use_additional_code": "Use additional code",
    "code_first": "Code first",
    "code_also": "Code also",
}


def kind_word(detail: CodeDetail) -> str:
    return {"category": "category", "block": "block of categories", "chapter": "chapter",
            "table": "PCS table", "section": "PCS section", "body_system": "PCS body system"
            }.get(detail.kind, "heading with codes under it")


def sevenths(detail: CodeDetail) -> str:
    return pairs(detail.seven_character)


def pairs(characters: list[list[str]]) -> str:
    return "; ".join(f"{c} {m}" for c, m in characters)


def system_name(system: str) -> str:
    return {"ICD10CM": "ICD-10-CM", "ICD10PCS": "ICD-10-PCS"}.get(system, system)


def axes_lines(detail: CodeDetail) -> list[str]:
    axes = detail.details.get("axes") or []
    if not axes:
        return []
    lines = ["Its seven characters:"]
    for axis in axes:
        line = f"- {axis['position']} {axis['axis']}: {axis['value']} = {axis['meaning']}"
        if axis.get("definition"):
            line += f" ({axis['definition']})"
        lines.append(line)
    return lines


def history_lines(detail: CodeDetail) -> list[str]:
    if not detail.history:
        return []
    lines = ["Its history in the releases loaded here:"]
    for item in detail.history:
        when = f", effective {item['effective']}" if item.get("effective") else ""
        lines.append(f"- {item['release']}: {item['change']}{when}")
    return lines
