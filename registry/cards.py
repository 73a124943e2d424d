"""The model card: a documented, validated schema shared by models and versions.

Sections follow "Model Cards for Model Reporting" (Mitchell et al., 2019). Every
section is optional; unknown sections are refused so that typos are caught at
write time rather than discovered by a reviewer.
"""

from typing import Any

CARD_TEXT_MAX = 20_000
CARD_LIST_MAX = 50
CARD_ITEM_MAX = 1000

# name -> (kind, help text); kind is "text" (a string) or "list" (a list of strings).
CARD_SECTIONS: dict[str, tuple[str, str]] = {
    "intended_use": ("text", "What the model is for, and for whom."),
    "out_of_scope_uses": ("list", "Uses the model must not be put to."),
    "training_data": ("text", "The data the model was trained on, and how it was prepared."),
    "evaluation_data": ("text", "The data the model was evaluated on, and why it was chosen."),
    "metrics": ("text", "The measures reported, and why they were chosen."),
    "limitations": ("text", "Known limitations and failure modes."),
    "ethical_considerations": ("text", "Risks to people, and how they are mitigated."),
    "caveats_and_recommendations": ("text", "What users of the model should know."),
    "contacts": ("list", "People or teams responsible for the model (names or e-mails)."),
}


def validate_card(card: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Return (clean card, errors keyed by section)."""
    if card is None:
        return {}, {}
    if not isinstance(card, dict):
        return {}, {"card": ["Expected an object of card sections."]}
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for key, value in card.items():
        if key not in CARD_SECTIONS:
            allowed = ", ".join(CARD_SECTIONS)
            errors[key] = [f"Unknown card section. Allowed: {allowed}."]
            continue
        kind, _ = CARD_SECTIONS[key]
        if kind == "text":
            if not isinstance(value, str):
                errors[key] = ["Expected a string."]
            elif len(value) > CARD_TEXT_MAX:
                errors[key] = [f"At most {CARD_TEXT_MAX} characters."]
            elif "\x00" in value:
                errors[key] = ["Null characters are not allowed."]
            else:
                clean[key] = value
        else:
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                errors[key] = ["Expected a list of strings."]
            elif len(value) > CARD_LIST_MAX or any(len(item) > CARD_ITEM_MAX for item in value):
                errors[key] = [f"At most {CARD_LIST_MAX} items of {CARD_ITEM_MAX} characters."]
            elif any("\x00" in item for item in value):
                errors[key] = ["Null characters are not allowed."]
            else:
                clean[key] = value
    return clean, errors


def card_json_schema() -> dict[str, Any]:
    """What validate_card accepts, as JSON Schema (for the API's OpenAPI schema)."""
    text = {"type": "string", "maxLength": CARD_TEXT_MAX}
    item = {"type": "string", "maxLength": CARD_ITEM_MAX}
    strings = {"type": "array", "maxItems": CARD_LIST_MAX, "items": item}
    return {
        "type": "object",
        "properties": {
            key: {**(text if kind == "text" else strings), "description": help_text}
            for key, (kind, help_text) in CARD_SECTIONS.items()
        },
        "additionalProperties": False,
    }


def card_sections(card: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(title, kind, value) for each filled section, in schema order, for display."""
    return [
        (key.replace("_", " ").capitalize(), kind, card[key])
        for key, (kind, _) in CARD_SECTIONS.items()
        if card.get(key)
    ]
