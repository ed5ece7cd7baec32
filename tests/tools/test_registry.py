"""The one list of every operation (`tools.registry`): each transport serves its part of it, in
catalog order, and every operation is served somewhere. What each operation declares is
`tests/tools/core/test_catalog.py`."""

from __future__ import annotations

from typing import get_args

from tools.core.catalog import Transport
from tools.registry import ALL_OPERATIONS, OPERATIONS_BY_NAME, TOOLS, served_over


def test_each_transport_serves_its_operations_in_catalog_order():
    for transport in get_args(Transport):
        served = served_over(transport)
        assert served == tuple(op for op in ALL_OPERATIONS if transport in op.transports)
        assert served, f"nothing is served over {transport}"
    assert served_over("mcp") == TOOLS


def test_every_operation_is_served_and_found_by_its_name():
    served = {op.name for transport in get_args(Transport) for op in served_over(transport)}
    assert served == {op.name for op in ALL_OPERATIONS}
    assert len(OPERATIONS_BY_NAME) == len(ALL_OPERATIONS)
    assert all(OPERATIONS_BY_NAME[op.name] is op for op in ALL_OPERATIONS)
