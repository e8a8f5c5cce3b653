"""The consult service's expected failures, each with a stable machine-readable code."""

from __future__ import annotations


class ConsultFailure(Exception):
    """An expected failure; ``code`` is stable and machine-readable (GraphQL ActionResult)."""

    code = "CONSULT_FAILURE"


class SignInRequired(ConsultFailure):
    code = "SIGN_IN_REQUIRED"


class EmailNotVerified(ConsultFailure):
    code = "EMAIL_NOT_VERIFIED"


class NotAnExpert(ConsultFailure):
    code = "NOT_AN_EXPERT"


class AllowanceUsed(ConsultFailure):
    code = "ALLOWANCE_USED"


class NoConsultsOnPlan(ConsultFailure):
    code = "NO_CONSULTS_ON_PLAN"


class ConsultNotFound(ConsultFailure):
    code = "NOT_FOUND"


class ClaimedByAnother(ConsultFailure):
    code = "CLAIMED_BY_ANOTHER"


class NotOpen(ConsultFailure):
    """The case is answered or closed: nothing is waiting for an expert."""

    code = "NOT_OPEN"


class CaseClosed(ConsultFailure):
    code = "CASE_CLOSED"


class InvalidConsult(ConsultFailure):
    code = "INVALID_INPUT"


class Busy(ConsultFailure):
    code = "BUSY"
