"""Ports for servers started side by side are distinct: two ``free_port`` calls may be handed the same port,
and then the second server cannot start (a Triton e2e case failed that way)."""

import socket

from hyperrec.serving.server import free_ports


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(20)
    assert len(set(ports)) == 20
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
