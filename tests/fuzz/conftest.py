"""Property-based tests (hypothesis) for every parser that takes untrusted input.

Each test asserts "a clear error or a valid result, never another exception". Per test, the number
of generated inputs is ``callops.testing.fuzz_examples(default)``: ``CALLOPS_FUZZ_EXAMPLES=N`` runs N
per test instead. Hypothesis' example database is off so that CI runs are independent.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "callops",
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.load_profile("callops")
