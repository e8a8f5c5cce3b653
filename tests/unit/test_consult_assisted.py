"""The automatic part of a consult's acknowledgement: CasePilot's answer for the member
(by viewer id, metered and recorded like their own question), or the top search results
and why, over a small real CasePilot (tests/casepilot.py)."""

from __future__ import annotations

from services.accounts.client import LocalAccounts
from services.consult.application import Requester
from services.consult.assisted import AssistantAnswerer, asked
from services.consult.intake import SearchAnswerer
from services.consult.members import AccountsMembers
from tests.casepilot import Member, Stack

QUESTION = "which ICD-10-CM code for type 2 diabetes with hyperglycemia"


async def requester(stack: Stack, email: str, plan: str = "pro") -> tuple[Member, Requester]:
    member = stack.member(email, plan)
    found = await AccountsMembers(LocalAccounts(stack.accounts)).by_email(email)
    assert found is not None
    return member, found


def answerer(stack: Stack) -> AssistantAnswerer:
    return AssistantAnswerer(stack.assistant, SearchAnswerer(stack.lookup))


async def test_a_mailed_question_gets_casepilots_answer_for_the_member(stack: Stack) -> None:
    ann, who = await requester(stack, "ann@example.org")
    auto = await answerer(stack).answer("Diabetes", QUESTION, who, request_id="mail-1")
    assert auto.source == "assistant"
    assert auto.text.startswith("E11.65 Type 2 diabetes mellitus with hyperglycemia")
    cited = {(c.system, c.code): c for c in auto.citations}
    assert cited[("ICD10CM", "E11.65")].release == "2026-04-01"
    assert "search results" not in auto.text
    assert stack.questions_used(ann) == 1
    assert stack.conversation_events(ann) == ["ConversationStarted", "QuestionAsked",
                                              "AnswerGiven"]


async def test_a_retried_request_is_answered_again_without_a_second_question(
        stack: Stack) -> None:
    ann, who = await requester(stack, "ann@example.org")
    first = await answerer(stack).answer("Diabetes", QUESTION, who, request_id="mail-1")
    again = await answerer(stack).answer("Diabetes", QUESTION, who, request_id="mail-1")
    assert again == first
    assert stack.questions_used(ann) == 1
    assert stack.conversation_events(ann).count("AnswerGiven") == 1
    other = await answerer(stack).answer("Diabetes", QUESTION, who, request_id="mail-2")
    assert other.source == "assistant" and stack.questions_used(ann) == 2


async def test_a_member_over_the_days_allowance_gets_search_results_and_the_reason(
        stack: Stack) -> None:
    bob, who = await requester(stack, "bob@example.org", plan="tight")  # one a day
    first = await answerer(stack).answer("Diabetes", QUESTION, who, request_id="m1")
    assert first.source == "assistant" and stack.questions_used(bob) == 1
    over = await answerer(stack).answer("Diabetes", QUESTION, who, request_id="m2")
    assert over.source == "search"
    assert over.text.startswith("CasePilot could not answer this question (You have asked "
                                "all 1 questions of your plan today")
    assert "It is not an expert's answer." in over.text
    assert over.citations and all(f"{c.system} {c.code}: {c.title}" in over.text
                                  for c in over.citations)
    assert stack.questions_used(bob) == 1
    assert stack.conversation_events(bob).count("QuestionAsked") == 1


async def test_a_question_out_of_scope_gets_search_results_and_the_reason(
        stack: Stack) -> None:
    ann, who = await requester(stack, "ann@example.org")
    auto = await answerer(stack).answer("Weekend", "Will it rain in Paris on Saturday?", who)
    assert auto.source == "search" and auto.text.startswith("CasePilot could not answer")
    assert stack.questions_used(ann) == 0


def test_the_subject_is_asked_only_when_it_adds_to_the_question() -> None:
    assert asked("Diabetes question", QUESTION) == QUESTION
    assert asked("Re: coding help", "Which code for E. coli sepsis?") == \
        "Which code for E. coli sepsis?"
    assert asked("(no subject)", "Is J18.9 billable?") == "Is J18.9 billable?"
    assert asked("Sepsis due to E. coli", "Which code with septic shock?") == \
        "Sepsis due to E. coli\n\nWhich code with septic shock?"
