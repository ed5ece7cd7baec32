"""Hypothesis settings the property tests share."""

from __future__ import annotations

from typing import cast

from hypothesis import HealthCheck

ALL_HEALTH_CHECKS = cast("list[HealthCheck]", list(HealthCheck))
"""Every health check Hypothesis has not deprecated: iterating `HealthCheck` leaves those out.
The cast: its metaclass's `__iter__` is unannotated, so a type checker sees the metaclass, not the members."""
