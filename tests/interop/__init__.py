"""Interoperability tests against real mail software (Postfix, swaks, msmtp, openssl).

The reusable helpers live in :mod:`tests.interop.peers` (and :mod:`tests.interop.postfix`); the
benchmarks import them too, so they must not depend on pytest at import time beyond the skip
helpers.
"""
