"""Connects to a TCP listener on the loopback interface and sends it something."""

import socket


def handler(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"exfiltrated")
    return {"connected": True}
