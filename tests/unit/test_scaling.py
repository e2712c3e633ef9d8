"""svc_order on several processes: the local stack's specs and the channel's target."""

from __future__ import annotations

from common.channels import channel_target
from devstack.stack import SPECS, with_processes


def test_a_list_of_addresses_is_one_balanced_target_and_one_address_stays_as_it_is() -> None:
    assert channel_target("127.0.0.1:50053") == ("127.0.0.1:50053", False)
    assert channel_target("svc-order.trading:50053") == ("svc-order.trading:50053", False)
    assert channel_target("127.0.0.1:1, 127.0.0.1:2,") == ("ipv4:127.0.0.1:1,127.0.0.1:2", True)


def test_svc_order_gets_further_processes_that_run_it_on_ports_of_their_own() -> None:
    specs = with_processes(list(SPECS), 3)
    names = [spec.name for spec in specs]
    assert names == [
        "svc_user",
        "svc_inventory",
        "svc_order",
        "svc_order-2",
        "svc_order-3",
        "rest_bridge",
    ]
    third = specs[4]
    assert (third.runs, third.port_setting, third.port_variable) == (
        "svc_order",
        "ORDER_GRPC_PORT",
        "ORDER_GRPC_PORT_3",
    )
    # Only the first creates the table and names the address variable (the stack lists
    # every process's address there).
    assert third.table_variable is None
    assert third.address_variable is None
    # Asked again with another count, the further processes are made anew.
    assert [spec.name for spec in with_processes(specs, 1)] == [spec.name for spec in SPECS]
