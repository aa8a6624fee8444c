"""Benchmarks of esmtp-core against its peers, run side by side on one machine.

``python -m benchmarks`` measures every section (``--quick`` for a smoke run of a few seconds,
``--sections core,server`` to choose) and prints tables of ratios. Every comparison is measured in
the same run, interleaved (round-robin over the cases, rotating the order each round), and reported
as the median of several rounds with the minimum and maximum beside it, because the machine is
shared and noisy. Ratios are *paired*: each round's value is divided by the same round's baseline,
then the median, minimum and maximum of those ratios are shown.

Nothing here is a test with a timed assertion; the goals of issue 6 are evaluated and printed as
met / not met, never enforced.
"""
