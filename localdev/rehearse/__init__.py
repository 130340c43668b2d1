"""``make rehearse``: ``make deploy`` and ``make destroy`` without an AWS account
(docs/rehearsal.md)."""

from localdev.rehearse.rehearsal import Check, rehearse

__all__ = ["Check", "rehearse"]
