"""Environment variables read by the fabricator package (besides its Lambda entry point's), and their defaults.

- ``ARBITER_FABRICATOR_TESTS``: how the Fabricator uses the tests its model writes before the code: ``off`` (none
  written; the default: with the offline 1.5B model they refused right drafts more often than they caught wrong
  ones), ``vote``, ``settle`` or ``strict`` (see :mod:`fabricator.fabricator`). The ``tests`` argument wins.
- ``ARBITER_FABRICATOR_CROSS_CHECK``: ``on`` or ``off`` (the default): publish a draft only when a second draft,
  sampled apart, passes every check too and answers the same probes the same (see :mod:`fabricator.crosscheck`).
  The ``cross_check`` argument wins.
"""

from __future__ import annotations

ENV_FABRICATOR_TESTS = "ARBITER_FABRICATOR_TESTS"
ENV_FABRICATOR_CROSS_CHECK = "ARBITER_FABRICATOR_CROSS_CHECK"
