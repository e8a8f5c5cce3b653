"""The events CasePilot publishes (schemas under schema/events/assistant/).

Analysts replay them to see what members ask, what the assistant answered with which
citations and tools, and how members rated it.
"""

from __future__ import annotations

from typing import Any

from services.assistant.domain import Conversation
from services.shared.publishing import EventCatalogue

CATALOGUE = EventCatalogue(source="assistant")


@CATALOGUE.publish(Conversation.Started, "ConversationStarted", 1)
def conversation_started(event: Any) -> dict[str, Any]:
    return {"viewer_id": event.viewer_id}


@CATALOGUE.publish(Conversation.QuestionAsked, "QuestionAsked", 1)
def question_asked(event: Any) -> dict[str, Any]:
    return {"question": event.question, "about": event.about, "quota_used": event.quota_used,
            "quota_limit": event.quota_limit}


@CATALOGUE.publish(Conversation.AnswerGiven, "AnswerGiven", 1)
def answer_given(event: Any) -> dict[str, Any]:
    return {"answer_id": event.answer_id, "text": event.text, "citations": event.citations,
            "tools": event.tools, "kind": event.topic.get("kind"), "composer": event.composer,
            "refusal": event.refusal, "removed": event.removed,
            "elapsed_ms": event.elapsed_ms}


@CATALOGUE.publish(Conversation.AnswerRated, "AnswerRated", 1)
def answer_rated(event: Any) -> dict[str, Any]:
    return {"answer_id": event.answer_id, "rating": event.rating, "comment": event.comment}
