"""Loaded by the Python processes the cloud tests start (PYTHONPATH): a connection to any
address outside 127.0.0.0/8 is refused before it is made. moto reports public-looking
addresses (54.x) for its instances: nothing may ever try them."""
import ipaddress
import socket

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _check(address):
    if isinstance(address, tuple) and address:
        host = address[0]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if host == "localhost":
                return
            raise ConnectionRefusedError(f"loopback-only test: refused to resolve and connect to {host!r}")
        if not (ip.is_loopback):
            raise ConnectionRefusedError(f"loopback-only test: refused a connection to {host}")


def connect(self, address):
    _check(address)
    return _connect(self, address)


def connect_ex(self, address):
    _check(address)
    return _connect_ex(self, address)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
