"""The security suite: each test is one finding of the attack on a running ``vidmesh up``
(issue 11), run against the real system (``system``, ``gateway`` from tests/system_fixtures.py)
or a system of its own where it needs a setting the shared one must not have. docs/security.md
lists each threat, its defence and the test here that proves it."""
