"""Errors carry their context as attributes and read well."""

from __future__ import annotations

from gorch import DefinitionError, GorchError, StepError


def test_context_attributes() -> None:
    err = StepError("boom", workflow_id="w-1", thread="_main_", statement="charge")
    assert (err.workflow_id, err.thread, err.statement, err.step) == (
        "w-1", "_main_", "charge", "charge",
    )  # fmt: skip
    assert isinstance(err, GorchError) and str(err) == "boom"


def test_definition_error_lists_problems() -> None:
    one = DefinitionError(["S > Step 'a': bad"])
    assert str(one) == "Invalid workflow definition: S > Step 'a': bad"
    two = DefinitionError(["p1", "p2"])
    assert str(two) == "Invalid workflow definition (2 problems):\n  - p1\n  - p2"
    assert two.problems == ["p1", "p2"]
